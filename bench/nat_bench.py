#!/usr/bin/env python3
"""User-mode NAT benchmark: vnet vs pasta vs slirp4netns, one run.

A "host" namespace is connected by a veth to an "internet" namespace
(198.51.100.1/24 host side, 198.51.100.10/24 internet side, the host's
default route via .10, so nothing routes anywhere real). The internet
namespace runs iperf3 -s, a TCP request/response echo server and a
connect-accept server, all bound to 198.51.100.10. For each NAT a guest
namespace sends its traffic through that NAT, which runs in the host
namespace:
  - vnet: the engine, a network `--mode nat --mtu 65520`, the guest's TAP
    as a port, guest 10.0.2.15/24 via 10.0.2.2;
  - slirp4netns (libslirp): `--configure --mtu=65520`, guest 10.0.2.100;
  - pasta (passt): as user nobody (it refuses root), `--config-net -m 65520`
    with its own user+net namespace around a `sleep`; the guest copies the
    host's address and route, `--no-map-gw` so 198.51.100.10 is not turned
    into the host's loopback, no automatic port forwards.
Measured with the guest as client toward 198.51.100.10: TCP both ways and
UDP (1400-byte datagrams) with iperf3, 1-byte TCP request/response, and
connect+accept rate; medians of --runs runs; the NAT process's resident
memory after the run. Prints the values and the ratios vnet/pasta and
vnet/slirp4netns. Needs root; everything it creates (namespaces, processes,
a temp dir) is removed at the end.

usage: sudo bench/nat_bench.py [--vnet build/vnet] [--seconds 4] [--runs 3] [--only vnet,pasta,slirp4netns] [--json]
"""

import argparse
import json
import os
import shutil
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

# The namespace and peer helpers are the integration tests' (tests/integration).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from natlib import HOST_ADDR, INET_ADDR, listening  # noqa: E402
from vnetlib import wait_for  # noqa: E402

RR_PORT, CONN_PORT = 7007, 7008
# --ipv6: the same lab with IPv6 on the host and "internet" link; guests
# reach INET6 over IPv6 (vnet and the veth pair: fec0::15 behind fec0::2;
# pasta copies the host's address; slirp4netns uses its own fd00::/64).
HOST6, INET6 = "2001:db8:100::1", "2001:db8:100::10"
MTU = 65520
NATS = ("vnet", "pasta", "slirp4netns", "veth")
TESTS = ("tcp_out", "tcp_in", "udp_out", "rr", "conn")
PY = sys.executable or "python3"

# Internet side: a 1-byte (any size) TCP echo on RR_PORT, and on CONN_PORT a
# server that sends one byte to each accepted connection and closes it.
SERVERS_PY = r"""
import socket, sys, threading
addr, rr_port, conn_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def listener(port):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1024)
    return s

def echo(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                return
            c.sendall(d)

def rr_loop(s):
    while True:
        c, _ = s.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()

rr, conn = listener(rr_port), listener(conn_port)
threading.Thread(target=rr_loop, args=(rr,), daemon=True).start()
while True:
    c, _ = conn.accept()
    try:
        c.send(b"a")
    except OSError:
        pass
    c.close()
"""

# Guest side: N round trips of 1 byte on one connection.
RR_CLIENT_PY = r"""
import json, socket, sys, time
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((addr, port), timeout=10)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for _ in range(20):  # warm-up
    s.sendall(b"x"); s.recv(1)
trips = []
clock = time.perf_counter
t = clock()
for _ in range(n):
    t0 = clock()
    s.sendall(b"x")
    if not s.recv(1):
        sys.exit("connection closed")
    trips.append(clock() - t0)
dt = clock() - t
s.close()
trips.sort()
# One-way latency: half the round trip.
print(json.dumps({"tps": n / dt, "mean_us": dt / n * 1e6, "median_us": trips[n // 2] / 2 * 1e6,
                  "p99_us": trips[min(n - 1, n * 99 // 100)] / 2 * 1e6}))
"""

# Guest side: connect, read the server's byte, close, for `seconds`.
CONN_CLIENT_PY = r"""
import errno, json, socket, sys, time
addr, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ok = err = 0
kinds = {}
t = time.perf_counter()
end = t + seconds
while time.perf_counter() < end:
    try:
        s = socket.create_connection((addr, port), timeout=5)
        s.recv(1)
        s.close()
        ok += 1
    except OSError as e:
        err += 1
        kind = errno.errorcode.get(e.errno, "timeout" if isinstance(e, socket.timeout) else str(e.errno))
        kinds[kind] = kinds.get(kind, 0) + 1
dt = time.perf_counter() - t
print(json.dumps({"cps": ok / dt, "errors": err, "kinds": kinds}))
"""

# Rows of the table: key, label, unit, value key in the result dict.
ROWS = (
    ("tcp_out", "TCP guest->outside", "Gbit/s"),
    ("tcp_in", "TCP outside->guest", "Gbit/s"),
    ("udp_out_fps", "UDP guest->out 1400B", "kdgram/s"),
    ("udp_out_gbps", "UDP guest->out 1400B", "Gbit/s"),
    ("rr_tps", "TCP 1-byte req/resp", "trans/s"),
    ("rr_us", "TCP req/resp latency", "us (lower better)"),
    ("rr_median_us", "TCP one-way median", "us (lower better)"),
    ("rr_p99_us", "TCP one-way p99", "us (lower better)"),
    ("conn_rate", "TCP connect+close", "conn/s"),
    ("rss_mib", "NAT process RSS", "MiB (lower better)"),
)


def sh(args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


def descendants(pid):
    """PIDs of all descendants of pid (from /proc/*/stat)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return int([l for l in f if l.startswith("VmRSS")][0].split()[1])
    except (OSError, IndexError):
        return None


def wait_until(pred, timeout=10, what="condition"):
    wait_for(pred, timeout=timeout, interval=0.1, what=what)


class Bench:
    def __init__(self, opts):
        self.opts = opts
        tag = uuid.uuid4().hex[:5]
        self.ns_host, self.ns_inet = f"bnat-h-{tag}", f"bnat-i-{tag}"
        self.ns_guest = f"bnat-g-{tag}"
        self.tmp = tempfile.mkdtemp(prefix="vnet-natbench-")
        self.procs = []   # Popen objects, terminated by stop_all()
        self.pids = []    # other PIDs we own (pasta's sleep), killed by stop_all()
        self.undo = []    # base topology teardown (namespaces)
        self.nat_undo = []  # per-NAT teardown
        self.guest = None  # command prefix running a command in the current guest
        self.errors = {}

    # --- topology -------------------------------------------------------
    def add_ns(self, ns, undo):
        sh(["ip", "netns", "add", ns])
        undo.append(lambda: sh(["ip", "netns", "del", ns], check=False))
        sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        flag = 0 if self.opts.ipv6 else 1
        for key in ("all", "default"):
            sh(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{key}.disable_ipv6={flag}"])

    def tune(self, prefix):
        """Port range and TIME_WAIT reuse so the connect loop does not run out of ports."""
        sh(prefix + ["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535",
                     "net.ipv4.tcp_tw_reuse=1"], check=False)

    def make_lab(self):
        self.add_ns(self.ns_host, self.undo)
        self.add_ns(self.ns_inet, self.undo)
        h = ["ip", "-n", self.ns_host]
        sh(h + ["link", "add", "up0", "type", "veth", "peer", "name", "in0", "netns", self.ns_inet])
        sh(h + ["addr", "add", f"{HOST_ADDR}/24", "dev", "up0"])
        sh(h + ["link", "set", "up0", "up"])
        sh(["ip", "-n", self.ns_inet, "addr", "add", f"{INET_ADDR}/24", "dev", "in0"])
        sh(["ip", "-n", self.ns_inet, "link", "set", "in0", "up"])
        sh(h + ["route", "add", "default", "via", INET_ADDR])
        if self.opts.ipv6:
            sh(h + ["-6", "addr", "add", f"{HOST6}/64", "dev", "up0", "nodad"])
            sh(["ip", "-n", self.ns_inet, "-6", "addr", "add", f"{INET6}/64", "dev", "in0", "nodad"])
            # pasta takes its template interface from the default route.
            sh(h + ["-6", "route", "add", "default", "via", INET6])
        self.tune(["ip", "netns", "exec", self.ns_host])
        servers = self.start_base(["ip", "netns", "exec", self.ns_inet, PY, "-c", SERVERS_PY, self.target,
                                   str(RR_PORT), str(CONN_PORT)])
        proto = "tcp6" if self.opts.ipv6 else "tcp"
        wait_until(lambda: self.listening(servers.pid, CONN_PORT, proto), what="test servers listening")

    @property
    def target(self):
        """The internet server's address the guest connects to."""
        return INET6 if self.opts.ipv6 else INET_ADDR

    def guest_ipv6(self, ns, addr=None, via=None):
        """Static IPv6 for a guest namespace (vnet, veth) or, without addr,
        addresses from router advertisements (slirp4netns)."""
        run = ["ip", "netns", "exec", ns, "sysctl", "-q", "-w"]
        sh(run + ["net.ipv6.conf.eth0.accept_dad=0"], check=False)
        if addr:
            g = ["ip", "-n", ns, "-6"]
            sh(g + ["addr", "add", f"{addr}/64", "dev", "eth0", "nodad"])
            sh(g + ["route", "replace", "default", "via", via, "dev", "eth0"])

    listening = staticmethod(listening)

    def start_base(self, args):
        """A process that lives for the whole benchmark (the servers)."""
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.undo.append(stop)
        return p

    def start(self, args, **kw):
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        p = subprocess.Popen(args, **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pids.clear()
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()

    # --- the NATs under test --------------------------------------------
    def setup_vnet(self):
        self.add_ns(self.ns_guest, self.nat_undo)
        run_dir = os.path.join(self.tmp, "vnet")
        vnet = [self.opts.vnet, "--run-dir", run_dir]
        sh(["ip", "netns", "exec", self.ns_host] + vnet + ["up"] + shlex.split(os.environ.get("VNET_UP_ARGS", "")), timeout=30)
        pid = int(open(os.path.join(run_dir, "vnet.pid")).read())

        def down():
            sh(vnet + ["down"], check=False, timeout=30)
            for _ in range(50):
                if comm(pid) is None or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
                    return
                time.sleep(0.1)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.nat_undo.append(down)
        sh(vnet + ["net", "add", "b", "--mode", "nat", "--mtu", str(self.opts.mtu), "--dns-upstream", INET_ADDR])
        sh(vnet + ["port", "add", "b", f"tap,ifname=eth0,netns={self.ns_guest}"])
        g = ["ip", "-n", self.ns_guest]
        sh(g + ["link", "set", "eth0", "mtu", str(self.opts.mtu)])
        sh(g + ["addr", "add", "10.0.2.15/24", "dev", "eth0"])
        sh(g + ["link", "set", "eth0", "up"])
        sh(g + ["route", "add", "default", "via", "10.0.2.2"])
        if self.opts.ipv6:
            self.guest_ipv6(self.ns_guest, "fec0::15", "fec0::2")
        self.guest = ["ip", "netns", "exec", self.ns_guest]
        return pid

    def setup_slirp4netns(self):
        self.add_ns(self.ns_guest, self.nat_undo)
        sleeper = self.start(["ip", "netns", "exec", self.ns_guest, "sleep", "100000"])
        # ip netns exec execs sleep, so sleeper.pid is the sleep in the guest namespace.
        wait_until(lambda: comm(sleeper.pid) == "sleep", what="sleep in the guest namespace")
        log = open(os.path.join(self.tmp, "slirp4netns.log"), "w")
        if self.opts.ipv6:  # libslirp's RAs give the guest fd00::/64
            sh(["ip", "netns", "exec", self.ns_guest, "sysctl", "-q", "-w", "net.ipv6.conf.default.accept_ra=2",
                "net.ipv6.conf.default.accept_dad=0"])
        v6 = ["--enable-ipv6"] if self.opts.ipv6 else []
        p = self.start(["ip", "netns", "exec", self.ns_host, "slirp4netns", "--configure", f"--mtu={self.opts.mtu}",
                        "--disable-host-loopback"] + v6 + [str(sleeper.pid), "tap0"], stdout=log, stderr=log)
        log.close()

        def configured():
            if p.poll() is not None:
                raise RuntimeError("slirp4netns exited: " + open(os.path.join(self.tmp, "slirp4netns.log")).read())
            addrs = sh(["ip", "-n", self.ns_guest, "-o", "addr", "show", "dev", "tap0"], check=False).stdout
            return "10.0.2.100" in addrs and (not self.opts.ipv6 or "inet6 fd00:" in addrs)
        wait_until(configured, what="slirp4netns to configure tap0")
        self.guest = ["ip", "netns", "exec", self.ns_guest]
        return p.pid

    def setup_pasta(self):
        # pasta refuses to run as root and opens /dev/net/tun as user nobody.
        if os.stat("/dev/net/tun").st_mode & 0o006 != 0o006:
            os.chmod("/dev/net/tun", 0o666)
        logfile = os.path.join(self.tmp, "pasta.log")
        log = open(logfile, "w")
        p = self.start(["ip", "netns", "exec", self.ns_host, "setpriv", "--reuid=nobody", "--regid=nogroup",
                        "--clear-groups", "pasta", "--config-net", "-f", "-q", "-m", str(self.opts.mtu), "--no-map-gw",
                        "-6" if self.opts.ipv6 else "-4", "-t", "none", "-u", "none", "-T", "none", "-U", "none", "--",
                        "sleep", "100000"],
                       stdout=log, stderr=log, cwd="/")
        log.close()
        sleep_pid = [None]

        def ready():
            if p.poll() is not None:
                raise RuntimeError("pasta exited (rc %s): %s" % (
                    p.returncode, " | ".join(l.strip() for l in open(logfile) if "syslog" not in l)))
            pids = [c for c in descendants(p.pid) if comm(c) == "sleep"]
            if not pids:
                return False
            sleep_pid[0] = pids[0]
            family = "-6" if self.opts.ipv6 else "-4"
            out = sh(["nsenter", "-t", str(pids[0]), "-n", "ip", "-o", family, "route", "show", "default"],
                     check=False).stdout
            return "default" in out
        wait_until(ready, what="pasta's namespace to be configured")
        self.pids.append(sleep_pid[0])
        # Root may enter the network namespace alone; commands then run as root in it.
        self.guest = ["nsenter", "-t", str(sleep_pid[0]), "-n"]
        return p.pid  # setpriv and ip netns exec exec, so this is pasta itself

    def setup_veth(self):
        """The limit: the guest routed by the host namespace's kernel over a veth pair."""
        self.add_ns(self.ns_guest, self.nat_undo)
        h = ["ip", "-n", self.ns_host]
        sh(h + ["link", "add", "gw0", "mtu", str(self.opts.mtu), "type", "veth", "peer", "name", "eth0",
                "netns", self.ns_guest])
        self.nat_undo.append(lambda: sh(h + ["link", "del", "gw0"], check=False))
        sh(h + ["addr", "add", "10.0.2.2/24", "dev", "gw0"])
        sh(h + ["link", "set", "gw0", "up"])
        sh(["ip", "netns", "exec", self.ns_host, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        # Routed, not translated: the internet namespace knows the way back.
        sh(["ip", "-n", self.ns_inet, "route", "add", "10.0.2.0/24", "via", HOST_ADDR])
        self.nat_undo.append(lambda: sh(["ip", "-n", self.ns_inet, "route", "del", "10.0.2.0/24"], check=False))
        g = ["ip", "-n", self.ns_guest]
        sh(g + ["link", "set", "eth0", "mtu", str(self.opts.mtu)])
        sh(g + ["addr", "add", "10.0.2.15/24", "dev", "eth0"])
        sh(g + ["link", "set", "eth0", "up"])
        sh(g + ["route", "add", "default", "via", "10.0.2.2"])
        if self.opts.ipv6:
            sh(h + ["-6", "addr", "add", "fec0::2/64", "dev", "gw0", "nodad"])
            sh(["ip", "netns", "exec", self.ns_host, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"])
            sh(["ip", "-n", self.ns_inet, "-6", "route", "add", "fec0::/64", "via", HOST6])
            self.nat_undo.append(lambda: sh(["ip", "-n", self.ns_inet, "-6", "route", "del", "fec0::/64"],
                                            check=False))
            self.guest_ipv6(self.ns_guest, "fec0::15", "fec0::2")
        self.guest = ["ip", "netns", "exec", self.ns_guest]
        return None

    # --- measurement ----------------------------------------------------
    def iperf(self, extra):
        server = self.start(["ip", "netns", "exec", self.ns_inet, "iperf3", "-s", "-1", "-B", self.target])
        proto = "tcp6" if self.opts.ipv6 else "tcp"
        wait_until(lambda: self.listening(server.pid, 5201, proto) or server.poll() is not None, what="iperf3 -s")
        res = sh(self.guest + ["iperf3", "-c", self.target, "-J", "-t", str(self.opts.seconds)] + extra,
                 check=False, timeout=self.opts.seconds + 30)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:  # the client never reached it
            server.kill()
            server.wait()
        self.procs.remove(server)
        try:
            data = json.loads(res.stdout or "{}")
        except ValueError:
            data = {}
        if "end" not in data:
            return None, (data.get("error") or res.stderr.strip() or "no result")[:200]
        end = data["end"]
        if "-u" not in extra:  # TCP: the receiver's rate
            return {"gbps": end["sum_received"]["bits_per_second"] / 1e9}, None
        r = end.get("sum_received") or end["sum"]
        received = r["packets"] - r.get("lost_packets", 0)
        payload = int(extra[extra.index("-l") + 1])
        secs = r["seconds"] or self.opts.seconds
        return {"gbps": received * payload * 8 / secs / 1e9, "fps": received / secs}, None

    def guest_py(self, code, *args, timeout):
        res = sh(self.guest + [PY, "-c", code] + [str(a) for a in args], check=False, timeout=timeout)
        try:
            return json.loads(res.stdout), None
        except ValueError:
            return None, (res.stderr.strip().splitlines() or ["no output"])[-1][:200]

    def measure(self, name, pid):
        out, errs = {}, {}

        def collect(key, runs, err):
            if runs:
                out[key] = statistics.median(runs)
            elif err:
                errs[key] = err

        iperf_tests = {"tcp_out": [], "tcp_in": ["-R"], "udp_out": ["-u", "-b", "0", "-l", "1400"]}
        for test, extra in iperf_tests.items():
            if test not in self.opts.tests:
                continue
            runs, err = [], None
            for _ in range(self.opts.runs):
                r, e = self.iperf(extra)
                if r:
                    runs.append(r)
                err = err or e
            if test == "udp_out":
                collect("udp_out_fps", [r["fps"] / 1e3 for r in runs], err)
                collect("udp_out_gbps", [r["gbps"] for r in runs], err)
            else:
                collect(test, [r["gbps"] for r in runs], err)

        runs, err = [], None
        for _ in range(self.opts.runs if "rr" in self.opts.tests else 0):
            r, e = self.guest_py(RR_CLIENT_PY, self.target, RR_PORT, self.opts.rr_count, timeout=120)
            if r:
                runs.append(r)
            err = err or e
        collect("rr_tps", [r["tps"] for r in runs], err)
        collect("rr_us", [r["mean_us"] for r in runs], err)
        collect("rr_median_us", [r["median_us"] for r in runs], err)
        collect("rr_p99_us", [r["p99_us"] for r in runs], err)

        runs, err = [], None
        for _ in range(self.opts.runs if "conn" in self.opts.tests else 0):
            r, e = self.guest_py(CONN_CLIENT_PY, self.target, CONN_PORT, self.opts.seconds,
                                 timeout=self.opts.seconds + 60)
            if r:
                runs.append(r)
                if r["errors"]:
                    err = f"{r['errors']} failed connects in one {self.opts.seconds}s run " + \
                          ", ".join(f"{k} x{v}" for k, v in r["kinds"].items())
            err = err or e
        collect("conn_rate", [r["cps"] for r in runs], None)
        if err:
            errs["conn_rate"] = err

        rss = rss_kib(pid) if pid else None
        if rss is not None:
            out["rss_mib"] = rss / 1024
        out["errors"] = errs
        print(f"  {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in out.items() if isinstance(v, float))
              + (f"; errors: {errs}" if errs else ""), file=sys.stderr)
        return out

    def run(self):
        results = {}
        setups = {"vnet": self.setup_vnet, "pasta": self.setup_pasta, "slirp4netns": self.setup_slirp4netns,
                  "veth": self.setup_veth}
        try:
            self.make_lab()
            for name in NATS:
                if name not in self.opts.only:
                    continue
                print(f"{name} ...", file=sys.stderr)
                try:
                    pid = setups[name]()
                    # Same client-side tuning whatever the guest namespace.
                    self.tune(self.guest)
                    results[name] = self.measure(name, pid)
                except (RuntimeError, AssertionError, OSError, subprocess.SubprocessError) as e:
                    msg = str(e)
                    if isinstance(e, subprocess.CalledProcessError):
                        msg += ": " + (e.stderr or "").strip()
                    print(f"  {name}: failed: {msg}", file=sys.stderr)
                    results[name] = {"failed": msg[:300]}
                finally:
                    self.stop_all()
                    while self.nat_undo:
                        self.nat_undo.pop()()
                    self.guest = None
        finally:
            self.stop_all()
            while self.nat_undo:
                self.nat_undo.pop()()
            while self.undo:
                self.undo.pop()()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return results


def report(results, opts):
    print(f"user-mode NAT, guest as client toward {INET6 if opts.ipv6 else INET_ADDR} in an 'internet' namespace; "
          f"MTU {opts.mtu}; iperf3 {opts.seconds}s, req/resp {opts.rr_count} round trips, connect loop {opts.seconds}s; "
          f"median of {opts.runs}")
    w = 12
    print(f"{'measurement':<21} {'unit':<18} " + " ".join(f"{n:>{w}}" for n in NATS)
          + f" {'vnet/pasta':>11} {'vnet/slirp':>11} {'vnet/veth':>11}")

    def val(name, key):
        return results.get(name, {}).get(key)

    def fmt(v):
        if v is None:
            return "n/a"
        return f"{v:.3f}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:.0f}"

    for key, label, unit in ROWS:
        cells = [f"{fmt(val(n, key)):>{w}}" for n in NATS]

        def ratio(other):
            a, b = val("vnet", key), val(other, key)
            return f"{a / b:.2f}x" if a is not None and b else "n/a"
        print(f"{label:<21} {unit:<18} " + " ".join(cells) + f" {ratio('pasta'):>11} {ratio('slirp4netns'):>11} {ratio('veth'):>11}")
    for n in NATS:
        r = results.get(n)
        if r is None:
            continue
        if "failed" in r:
            print(f"{n}: n/a: {r['failed']}")
        for key, e in r.get("errors", {}).items():
            print(f"{n} {key}: {e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vnet", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "vnet"))
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rr-count", type=int, default=2000, help="round trips of the request/response test")
    ap.add_argument("--only", default="vnet,pasta,slirp4netns", help="comma-separated subset of " + ",".join(NATS))
    ap.add_argument("--mtu", type=int, default=MTU, help="the guest link's MTU (default %(default)s)")
    ap.add_argument("--tests", default=",".join(TESTS), help="comma-separated subset of " + ",".join(TESTS))
    ap.add_argument("--ipv6", action="store_true", help="guests reach the internet namespace over IPv6")
    ap.add_argument("--json", action="store_true", help="also print the raw results as JSON")
    opts = ap.parse_args()
    opts.only = [n.strip() for n in opts.only.split(",") if n.strip()]
    opts.tests = [n.strip() for n in opts.tests.split(",") if n.strip()]
    if os.geteuid() != 0:
        sys.exit("nat_bench: needs root (namespaces and TAP devices)")
    for tool in ("iperf3", "slirp4netns", "pasta", "setpriv", "nsenter"):
        if not shutil.which(tool):
            print(f"nat_bench: {tool} not found", file=sys.stderr)
    opts.vnet = os.path.abspath(opts.vnet)
    results = Bench(opts).run()
    report(results, opts)
    if opts.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
