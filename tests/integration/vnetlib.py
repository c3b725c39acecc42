"""Shared helpers for vnet's integration tests.

The tests drive real peers: the kernel's TCP/IP stack in network namespaces
(plugged into vnet through TAP devices), stock QEMU, busybox, iperf3, nc and
tcpdump. Everything a test creates (namespaces, processes, run dirs) is
registered with a Cleanup and removed by name or PID when the test ends,
whatever the outcome. Traffic stays inside the namespaces the tests create
or on loopback.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import uuid

VNET = os.environ.get("VNET_BIN") or shutil.which("vnet") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "vnet")
# The project's guest kit (a Debian kernel + busybox initramfs builder).
GUEST_KIT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "guest"))


def need_root(test):
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (network namespaces, TAP devices)")


def have(cmd):
    return shutil.which(cmd) is not None


def run(cmd, check=True, timeout=60, **kw):
    """Runs a command (list), returns CompletedProcess with text output."""
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def short_id():
    return uuid.uuid4().hex[:6]


class Cleanup:
    """Undo stack: processes are killed by PID, namespaces deleted by name."""

    def __init__(self):
        self.actions = []
        self.engines = []  # every Engine started under this Cleanup (for the sanitizer check)

    def add(self, fn):
        self.actions.append(fn)

    def process(self, proc):
        def stop():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM) if getattr(proc, "_vnet_pgrp", False) else proc.terminate()
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe:
                    pipe.close()
        self.add(stop)
        return proc

    def run_all(self):
        while self.actions:
            fn = self.actions.pop()
            try:
                fn()
            except Exception as e:  # keep cleaning up
                print(f"cleanup: {e}")


class Netns:
    """A network namespace standing for one guest: its kernel is the peer."""

    def __init__(self, cleanup, prefix="vt"):
        self.name = f"{prefix}-{short_id()}"
        run(["ip", "netns", "add", self.name])
        cleanup.add(lambda: run(["ip", "netns", "del", self.name], check=False))
        self.run(["ip", "link", "set", "lo", "up"])

    def cmd(self, args):
        return ["ip", "netns", "exec", self.name] + list(args)

    def run(self, args, **kw):
        return run(self.cmd(args), **kw)

    def popen(self, cleanup, args, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return cleanup.process(subprocess.Popen(self.cmd(args), **kw))

    def configure(self, ifname, cidr, mtu=None):
        self.run(["ip", "addr", "add", cidr, "dev", ifname])
        if mtu:
            self.run(["ip", "link", "set", ifname, "mtu", str(mtu)])
        self.run(["ip", "link", "set", ifname, "up"])

    def ping(self, addr, count=3, interval=None, timeout=30):
        args = ["busybox", "ping", "-c", str(count), "-W", "2"]
        if interval:
            args += ["-i", str(interval)]
        return self.run(args + [addr], check=False, timeout=timeout)


# What AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer print
# when they find something. A sanitizer build of the engine writes its
# reports to stderr, which the daemon points at vnet.log.
SANITIZER_MARKERS = (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer", b"runtime error:")


def sanitizer_report(path):
    """The first sanitizer report in a log file (with some context), or ''."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        return ""
    hits = [i for i in (text.find(m) for m in SANITIZER_MARKERS) if i >= 0]
    if not hits:
        return ""
    start = max(0, min(hits) - 200)
    return text[start:start + 4000].decode(errors="replace")


class Engine:
    """A vnet engine with its own run dir, started with `vnet up`. When the
    engine has stopped, its log is scanned for sanitizer reports
    (`sanitizer_findings`; VnetTestCase fails the test on any)."""

    def __init__(self, cleanup, config=None, extra=(), netns=None):
        """netns: run the engine inside this Netns (for inet and multicast
        sockets that must share a loopback with their QEMU peer)."""
        self.netns = netns
        self.run_dir = tempfile.mkdtemp(prefix="vnet-test-")
        cleanup.add(lambda: shutil.rmtree(self.run_dir, ignore_errors=True))
        self.sanitizer_findings = ""
        # Runs after stop() (the undo stack is LIFO), before the run dir goes.
        cleanup.add(self.scan_for_sanitizer_reports)
        cleanup.engines.append(self)
        args = ["up"]
        if config is not None:
            path = os.path.join(self.run_dir, "vnet.toml")
            with open(path, "w") as f:
                f.write(config)
            args += ["--config", path]
        prefix = netns.cmd([]) if netns else []
        self.up_output = run(prefix + [VNET, "--run-dir", self.run_dir] + args + list(extra), timeout=30).stdout
        with open(os.path.join(self.run_dir, "vnet.pid")) as f:
            self.pid = int(f.read())
        cleanup.add(self.stop)

    def restart(self, *extra):
        """`vnet down`, then `vnet up` on the same run dir (so the same state dir)."""
        self.vnet("down")
        prefix = self.netns.cmd([]) if self.netns else []
        res = run(prefix + [VNET, "--run-dir", self.run_dir, "up"] + list(extra), timeout=30)
        with open(os.path.join(self.run_dir, "vnet.pid")) as f:
            self.pid = int(f.read())
        return res

    def vnet(self, *args, check=True, timeout=30):
        res = run([VNET, "--run-dir", self.run_dir] + list(args), check=check, timeout=timeout)
        return res if not check else res.stdout

    def stop(self):
        if not self.alive():
            return
        try:
            self.vnet("down", check=False)
        except (OSError, subprocess.SubprocessError):
            pass  # e.g. the binary is being rebuilt: fall through to SIGKILL
        for _ in range(50):
            if not self.alive():
                return
            time.sleep(0.1)
        os.kill(self.pid, signal.SIGKILL)

    def scan_for_sanitizer_reports(self):
        self.sanitizer_findings = sanitizer_report(os.path.join(self.run_dir, "vnet.log"))

    def alive(self):
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        # A zombie (exited, not yet reaped by anyone) counts as gone.
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().split()[2] != "Z"
        except FileNotFoundError:
            return False

    def status(self, net=None):
        args = ["status", "--json"] + ([net] if net else [])
        return json.loads(self.vnet(*args))

    def network(self, name):
        for n in self.status()["networks"]:
            if n["name"] == name:
                return n
        raise AssertionError(f"no network {name}")

    def port(self, net, port_id):
        for p in self.network(net)["ports"]:
            if p["id"] == port_id:
                return p
        raise AssertionError(f"no port {port_id} in {net}")

    def counters(self, net, port_id):
        return self.port(net, port_id)["counters"]

    def add_port(self, net, spec, *flags):
        return int(self.vnet("port", "add", net, spec, *flags).strip())

    def add_tap_guest(self, cleanup, net, cidr, mtu=None, ifname="eth0"):
        """A namespace whose TAP is plugged into `net`; returns (ns, port id)."""
        ns = Netns(cleanup)
        port = self.add_port(net, f"tap,ifname={ifname},netns={ns.name}")
        if cidr:
            ns.configure(ifname, cidr, mtu)
        else:
            ns.run(["ip", "link", "set", ifname, "up"])
        return ns, port

    def log(self):
        try:
            with open(os.path.join(self.run_dir, "vnet.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""


def terminate(proc):
    """SIGTERM to a process we started, SIGKILL if it is still there 5 s later."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def read_text(path):
    with open(path) as f:
        return f.read()


def cpu_seconds(pid):
    """CPU seconds (user + system) process pid has used so far."""
    fields = read_text(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid):
    """pid and all its descendants, by /proc/PID/task/TID/children."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in read_text(f"/proc/{p}/task/{tid}/children").split()]
        except FileNotFoundError:
            pass  # exited meanwhile
    return found


def tree_cpu_seconds(pid):
    """CPU seconds pid and its descendants (vnet's engine and privileged helper) have used so far."""
    total = 0.0
    for p in process_tree(pid):
        try:
            total += cpu_seconds(p)
        except FileNotFoundError:
            pass
    return total


def sha256_of(path):
    return run(["sha256sum", path]).stdout.split()[0]


def random_file(directory, size):
    path = os.path.join(directory, f"data-{size}")
    with open(path, "wb") as f:
        remaining = size
        while remaining:
            chunk = os.urandom(min(remaining, 1 << 20))
            f.write(chunk)
            remaining -= len(chunk)
    return path


class VnetTestCase(unittest.TestCase):
    """Base: root check, a Cleanup per test, a scratch dir, engine log on failure."""

    def setUp(self):
        need_root(self)
        self.cleanup = Cleanup()
        self.tmp = tempfile.mkdtemp(prefix="vnet-it-")
        self.cleanup.add(lambda: shutil.rmtree(self.tmp, ignore_errors=True))
        self.engines = []

    def _failed(self):
        result = getattr(self._outcome, "result", None)
        if result is None:
            return False
        return any(test is self for test, _ in result.errors + result.failures)

    def tearDown(self):
        if self._failed():
            for e in self.engines:
                print(f"--- vnet log ({e.run_dir}) ---\n{e.log()[-4000:]}")
        self.cleanup.run_all()
        for e in self.cleanup.engines:
            if e.sanitizer_findings:
                self.fail(f"sanitizer report in the engine's log ({e.run_dir}/vnet.log):\n{e.sanitizer_findings}")

    def engine(self, config=None, netns=None, extra=()):
        # Started as root, the engine runs as an unprivileged user; the
        # sockets, captures and TFTP roots tests name live in this root-only
        # scratch dir, which the privileged helper serves when allowed.
        e = Engine(self.cleanup, config, netns=netns, extra=("--allow-path", self.tmp) + tuple(os.environ.get("VNET_TEST_EXTRA", "").split()) + tuple(extra))
        self.engines.append(e)
        return e

    def transfer_nc(self, sender_ns, receiver_ns, receiver_addr, path, port=5201, timeout=120):
        """Sends `path` with nc from sender to receiver; returns the received file's sha256."""
        out = os.path.join(self.tmp, f"recv-{short_id()}")
        with open(out, "wb") as sink:
            rx = receiver_ns.popen(self.cleanup, ["nc", "-l", "-d", "-p", str(port)], stdout=sink)
            wait_for(lambda: f":{port:04X}" in read_text(f"/proc/{rx.pid}/net/tcp"), what="nc listening")
            sender_ns.run(["sh", "-c", f"nc -N {receiver_addr} {port} < {path}"], timeout=timeout)
            rx.wait(timeout=timeout)
        return sha256_of(out)
