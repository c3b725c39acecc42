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
UDP (1400- and 64-byte datagrams, both ways) with iperf3, 1-byte TCP
request/response, and connect+accept rate; medians of --runs rounds, each
stack measured once per round in turn (so that a slow stretch of the
machine does not fall on one stack alone); the NAT process's resident
memory after those. The hypervisor's steal time is read around each run:
a run during which it took more than --max-steal of the CPU is measured
again (at most twice), and the worst steal is reported. Then, each
selectable with --tests:
  - rtt: TCP both ways at 50 ms round-trip time (vnet's own delay
    impairment, 25 ms each way; tc netem on the guest's interface for the
    others, n/a where the kernel has no sch_netem), and 64 MiB each way
    checked by sha256;
  - idle: --idle-flows idle TCP connections held open through the NAT: its
    memory and file descriptors per flow, and what is left after closing;
  - up (vnet only): time from starting `vnet up` to its return (the engine
    answers then), fresh run dir each time;
  - guests64 (vnet only): --guests guest namespaces on one NAT network, each
    an iperf3 client at the same time, the sum against one guest alone.
Prints the values and the ratios vnet/pasta and vnet/slirp4netns. Needs
root; everything it creates (namespaces, processes, a temp dir) is removed
at the end.

usage: sudo bench/nat_bench.py [--vnet build/vnet] [--seconds 4] [--runs 3] [--only vnet,pasta,slirp4netns]
                             [--tests tcp_out,...] [--idle-flows 10000] [--guests 64] [--json]
"""

import argparse
import ctypes
import json
import os
import resource
import select
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
from vnetlib import terminate, wait_for  # noqa: E402
from rounds import OWN_SESSION, StealCheck, add_max_steal_option  # noqa: E402  (bench/, this script's folder)

RR_PORT, CONN_PORT, EXACT_PORT, IDLE_PORT = 7007, 7008, 7009, 7010
# --ipv6: the same lab with IPv6 on the host and "internet" link; guests
# reach INET6 over IPv6 (vnet and the veth pair: fec0::15 behind fec0::2;
# pasta copies the host's address; slirp4netns uses its own fd00::/64).
HOST6, INET6 = "2001:db8:100::1", "2001:db8:100::10"
MTU = 65520
NATS = ("vnet", "pasta", "slirp4netns", "veth")
# iperf3 figures: test name -> client arguments. UDP counts what arrived, in
# datagrams of the -l payload; -R makes the internet side the sender.
IPERF_TESTS = {
    "tcp_out": [], "tcp_in": ["-R"],
    "udp_out": ["-u", "-b", "0", "-l", "1400"], "udp_out64": ["-u", "-b", "0", "-l", "64"],
    "udp_in": ["-u", "-b", "0", "-l", "1400", "-R"], "udp_in64": ["-u", "-b", "0", "-l", "64", "-R"],
}
# Figures that do not depend on the MTU (bench/run measures them at one MTU
# only); each NAT is set up afresh for them (see Bench.run).
ONCE_TESTS = ("idle", "up", "guests64", "rtt")
TESTS = tuple(IPERF_TESTS) + ("rr", "conn") + ONCE_TESTS
# rtt: 25 ms each way; the guest's TCP buffers may grow to 16 MiB (see
# measure_rtt), and RTT_EXACT_MIB go each way byte-exact.
RTT_DELAY_MS, RTT_EXACT_MIB = 25, 64
RTT_SYSCTLS = ("net.ipv4.tcp_wmem=4096 16384 16777216", "net.ipv4.tcp_rmem=4096 131072 16777216")
# idle: seconds to let closed flows go (vnet lingers them 2 s, then hands
# freed heap back a second later) before the "before" and "after" figures,
# then at most this long more for the NAT's fd count to settle.
IDLE_LINGER_S, IDLE_SETTLE_MAX_S = 5, 15
PY = sys.executable or "python3"
CLONE_NEWNET = 0x40000000

# Internet side: a 1-byte (any size) TCP echo on RR_PORT, on CONN_PORT a
# server that sends one byte to each accepted connection and closes it, and
# on EXACT_PORT the byte-exact transfer: after a line "D SIZE" it sends SIZE
# random bytes and then their sha256; after "U SIZE" it reads SIZE bytes and
# answers with their sha256.
SERVERS_PY = r"""
import hashlib, os, socket, sys, threading
addr, rr_port, conn_port, exact_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

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

def exact(c):
    with c:
        f = c.makefile("rb")  # read what follows the line through f: it may hold some
        op, size = f.readline().split()
        size, done, h = int(size), 0, hashlib.sha256()
        while done < size:
            if op == b"D":
                d = os.urandom(min(1 << 20, size - done))
                c.sendall(d)
            else:
                d = f.read1(min(1 << 20, size - done))
                if not d:
                    return
            h.update(d)
            done += len(d)
        c.sendall(h.digest())

def exact_loop(s):
    while True:
        c, _ = s.accept()
        threading.Thread(target=exact, args=(c,), daemon=True).start()

rr, conn, ex = listener(rr_port), listener(conn_port), listener(exact_port)
threading.Thread(target=rr_loop, args=(rr,), daemon=True).start()
threading.Thread(target=exact_loop, args=(ex,), daemon=True).start()
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
# One-way latency: half the round trip; the distribution as percentiles.
def pct(p):
    return trips[min(n - 1, int(n * p / 100))] / 2 * 1e6
print(json.dumps({"tps": n / dt, "mean_us": dt / n * 1e6, "median_us": pct(50), "p99_us": pct(99),
                  "pcts": {str(p): pct(p) for p in (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9)}}))
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

# Guest side of the byte-exact transfer (EXACT_PORT): SIZE bytes down, then
# SIZE up, each compared by sha256 with what the other end saw. The TCP
# connect time stands for the round trip (the SYN and SYN-ACK each cross
# the delay once).
EXACT_CLIENT_PY = r"""
import hashlib, json, os, socket, sys, time
addr, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def session(op):
    t = time.perf_counter()
    s = socket.create_connection((addr, port), timeout=120)
    connect = time.perf_counter() - t
    s.sendall(b"%s %d\n" % (op, size))
    return s, connect

def hash_in(s, n, h):  # reads up to n bytes into the hash h; how many came
    got = 0
    while got < n:
        d = s.recv(min(1 << 20, n - got))
        if not d:
            break
        h.update(d)
        got += len(d)
    return got

def digest_of_peer(s):
    d = b""
    while len(d) < 32:
        more = s.recv(32 - len(d))
        if not more:
            break
        d += more
    return d

s, c_down = session(b"D")
h = hashlib.sha256()
t = time.perf_counter()
got = hash_in(s, size, h)
down_ok = got == size and digest_of_peer(s) == h.digest()
down_s = time.perf_counter() - t
s.close()
s, c_up = session(b"U")
h = hashlib.sha256()
t = time.perf_counter()
sent = 0
while sent < size:
    d = os.urandom(min(1 << 20, size - sent))
    h.update(d)
    s.sendall(d)
    sent += len(d)
up_ok = digest_of_peer(s) == h.digest()
up_s = time.perf_counter() - t
s.close()
print(json.dumps({"down_ok": down_ok, "up_ok": up_ok, "down_bytes": got, "down_s": down_s, "up_s": up_s,
                  "connect_ms": min(c_down, c_up) * 1e3}))
"""

# Both ends of the idle flows raise their own fd limit to hold them (to
# the hard limit where root may not raise that one).
NOFILE_PY = r"""
import resource
def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, max(hard, n)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
"""

# Internet side of the idle flows: accepts and holds every connection, and
# closes its end when the guest closes its own (else the NAT's half would
# wait for a FIN that never comes).
IDLE_SERVER_PY = NOFILE_PY + r"""
import selectors, socket, sys
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
raise_nofile(n + 256)
ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((addr, port))
ls.listen(4096)
ls.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(ls, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        if s is ls:
            while True:
                try:
                    c, _ = ls.accept()
                except OSError:  # drained (or out of fds: the client sees it)
                    break
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ)
            continue
        try:
            d = s.recv(4096)
        except OSError:
            d = b""
        if not d:
            sel.unregister(s)
            s.close()
"""

# Guest side of the idle flows: opens up to N connections one after the
# other and keeps them; gives up after 20 failures in a row (a NAT at its
# cap refuses every further one). Prints what it opened; when a line
# arrives on stdin, how many are still connected (a NAT may drop a flow the
# guest still holds), then closes them all.
IDLE_CLIENT_PY = NOFILE_PY + r"""
import errno, json, socket, sys
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
raise_nofile(n + 256)
socks, kinds, streak = [], {}, 0
while len(socks) < n and streak < 20:
    try:
        socks.append(socket.create_connection((addr, port), timeout=5))
        streak = 0
    except OSError as e:
        streak += 1
        kind = errno.errorcode.get(e.errno, "timeout" if isinstance(e, socket.timeout) else str(e.errno))
        kinds[kind] = kinds.get(kind, 0) + 1
print(json.dumps({"opened": len(socks), "errors": sum(kinds.values()), "kinds": kinds}), flush=True)
sys.stdin.readline()
alive = 0
for s in socks:
    s.setblocking(False)
    try:
        alive += s.recv(1, socket.MSG_PEEK) != b""  # the server never sends: b"" is its FIN
    except BlockingIOError:
        alive += 1
    except OSError:  # reset
        pass
print(json.dumps({"alive": alive}), flush=True)
for s in socks:
    s.close()
"""

# Rows of the table: key, label, unit, value key in the result dict.
ROWS = (
    ("tcp_out", "TCP guest->outside", "Gbit/s"),
    ("tcp_in", "TCP outside->guest", "Gbit/s"),
    ("udp_out_fps", "UDP guest->out 1400B", "kdgram/s"),
    ("udp_out_gbps", "UDP guest->out 1400B", "Gbit/s"),
    ("udp_out64_fps", "UDP guest->out 64B", "kdgram/s"),
    ("udp_in_fps", "UDP out->guest 1400B", "kdgram/s"),
    ("udp_in64_fps", "UDP out->guest 64B", "kdgram/s"),
    ("rr_tps", "TCP 1-byte req/resp", "trans/s"),
    ("rr_us", "TCP req/resp latency", "us (lower better)"),
    ("rr_median_us", "TCP one-way median", "us (lower better)"),
    ("rr_p99_us", "TCP one-way p99", "us (lower better)"),
    ("conn_rate", "TCP connect+close", "conn/s"),
    ("rss_mib", "NAT process RSS", "MiB (lower better)"),
    ("steal_max_pct", "hypervisor steal", "% of CPU, worst run"),
    ("steal_redone", "runs measured again", "runs (steal)"),
    ("rtt_down", "50 ms RTT download", "Mbit/s"),
    ("rtt_up", "50 ms RTT upload", "Mbit/s"),
    ("rtt_ratio", "50 ms RTT down/up", "ratio"),
    ("rtt_exact", "50 ms RTT byte-exact", "1 yes, 0 no"),
    ("rtt_connect_ms", "50 ms RTT TCP connect", "ms (check: ~50)"),
    ("idle_opened", "idle flows opened", "flows"),
    ("idle_held", "idle flows held", "flows (at measuring)"),
    ("idle_kib_per_flow", "idle memory per flow", "KiB (lower better)"),
    ("idle_fds_per_flow", "idle fds per flow", "fds (lower better)"),
    ("idle_rss_after_kib", "idle RSS after close", "KiB over before"),
    ("idle_fds_after", "idle fds after close", "fds over before"),
    ("up_ms", "vnet up to ready", "ms (lower better)"),
    ("up_status_ms", "vnet status after up", "ms (lower better)"),
    ("guests_one", "1 guest TCP out", "Gbit/s"),
    ("guests_sum", "N guests TCP out, sum", "Gbit/s"),
    ("guests_wire", "N guests, on uplink", "Gbit/s mid-run (check)"),
    ("guests_ratio", "N guests / 1 guest", "ratio (goal >= 0.8)"),
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


def gone(pid):
    """True once pid has exited (a zombie not yet reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def undo_all(stack, keep=0):
    """Runs the undo steps above the first `keep`, latest first; one that
    fails is reported and the others still run."""
    while len(stack) > keep:
        try:
            stack.pop()()
        except (OSError, subprocess.SubprocessError) as e:
            print(f"cleanup: {failure(e)}", file=sys.stderr)


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def settle(pid, floor):
    """(RSS KiB, fds) of pid once its closed flows are gone: after
    IDLE_LINGER_S, when its fd count is down to floor and its RSS has
    stopped falling for 2 s, or IDLE_SETTLE_MAX_S later (libslirp keeps
    closed sockets ~10 s, then frees them at once; vnet frees flows in
    TIME_WAIT 2 s after their sockets and trims its heap a second after)."""
    time.sleep(IDLE_LINGER_S)
    deadline = time.monotonic() + IDLE_SETTLE_MAX_S
    while (fd_count(pid) or 0) > floor and time.monotonic() < deadline:
        time.sleep(0.5)
    rss, steady_since = rss_kib(pid), time.monotonic()
    while rss is not None and time.monotonic() < deadline and time.monotonic() - steady_since < 2:
        time.sleep(0.5)
        now = rss_kib(pid)
        if now is None or now < rss:
            steady_since = time.monotonic()
        rss = now
    return rss_kib(pid), fd_count(pid)


def in_netns(ns):
    """A preexec_fn: the child joins network namespace ns before its exec
    (setns(2); this Python has no os.setns)."""
    libc = ctypes.CDLL(None, use_errno=True)

    def enter():
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        os.close(fd)
    return enter


def failure(e):
    """What went wrong, with a failed command's stderr."""
    msg = str(e)
    if isinstance(e, subprocess.CalledProcessError):
        msg += ": " + (e.stderr or "").strip()
    return msg[:300]


def wait_until(pred, timeout=10, what="condition"):
    wait_for(pred, timeout=timeout, interval=0.1, what=what)


class Bench:
    def __init__(self, opts):
        self.opts = opts
        self.tag = tag = uuid.uuid4().hex[:5]
        self.ns_host, self.ns_inet = f"bnat-h-{tag}", f"bnat-i-{tag}"
        self.ns_guest = f"bnat-g-{tag}"
        self.tmp = tempfile.mkdtemp(prefix="vnet-natbench-")
        self.procs = []   # Popen objects, terminated by stop_all()
        self.pids = []    # other PIDs we own (pasta's sleep), killed by stop_all()
        self.undo = []    # base topology teardown (namespaces)
        self.nat_undo = []  # per-NAT teardown
        self.guest = None  # command prefix running a command in the current guest
        self.guest_if = None  # the current guest's interface toward its NAT
        self.vnet = None  # vnet's command prefix (with its run dir) and the guest's port id, while it runs
        self.vnet_port = None
        self.setup_fds = None  # the NAT process's fds right after its setup
        self.errors = {}
        self.repeats = opts.runs  # runs per figure in one turn (1 for the interleaved rounds)
        self.steal = StealCheck(opts.max_steal)  # the current turn's runs

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
                                   str(RR_PORT), str(CONN_PORT), str(EXACT_PORT)])
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

        self.undo.append(lambda: terminate(p))
        return p

    def start(self, args, **kw):
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        p = subprocess.Popen(args, **kw)
        self.procs.append(p)
        return p

    def stop(self, p):
        """Stops one process start() started, before the end of its NAT's turn."""
        terminate(p)
        self.procs.remove(p)

    def unwind(self, mark):
        """Undoes the per-NAT steps added since len(self.nat_undo) was mark
        (a test's own namespaces and ports), latest first."""
        undo_all(self.nat_undo, mark)

    def stop_all(self):
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pids.clear()
        for p in reversed(self.procs):
            terminate(p)
        self.procs.clear()

    # --- the NATs under test --------------------------------------------
    def vnet_up(self, run_dir):
        """`vnet up` in the host namespace with its own run dir; its `vnet
        down` (then SIGKILL if the engine lingers) goes on nat_undo. Returns
        the command prefix and the engine's PID (vnet.pid: the engine, not
        its privileged helper)."""
        vnet = [self.opts.vnet, "--run-dir", run_dir]
        sh(["ip", "netns", "exec", self.ns_host] + vnet + ["up"] + shlex.split(os.environ.get("VNET_UP_ARGS", "")), timeout=30)
        pid = int(open(os.path.join(run_dir, "vnet.pid")).read())
        self.nat_undo.append(self.vnet_down(vnet, pid))
        return vnet, pid

    @staticmethod
    def vnet_down(vnet, pid):
        """An undo step: `vnet down`, then SIGKILL if the engine lingers."""
        def down():
            try:
                sh(vnet + ["down"], check=False, timeout=30)
            except (OSError, subprocess.SubprocessError):  # e.g. the binary is being rebuilt
                os.kill(pid, signal.SIGTERM)  # the engine shuts down on it as on `vnet down`
            for _ in range(50):
                if gone(pid):
                    return
                time.sleep(0.1)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return down

    def vnet_guest(self, ns, addr):
        """A TAP port of network b in namespace ns, addr/24 via 10.0.2.2; returns the port id."""
        port = int(sh(self.vnet + ["port", "add", "b", f"tap,ifname=eth0,netns={ns}"]).stdout.strip())
        g = ["ip", "-n", ns]
        sh(g + ["link", "set", "eth0", "mtu", str(self.opts.mtu)])
        sh(g + ["addr", "add", f"{addr}/24", "dev", "eth0"])
        sh(g + ["link", "set", "eth0", "up"])
        sh(g + ["route", "add", "default", "via", "10.0.2.2"])
        return port

    def setup_vnet(self):
        self.add_ns(self.ns_guest, self.nat_undo)
        # A run dir per setup: vnet saves its networks there and would bring
        # the last turn's back.
        self.vnet, pid = self.vnet_up(tempfile.mkdtemp(prefix="vnet-", dir=self.tmp))
        # The idle-flows figure opens more flows from one guest than the
        # per-guest cap a hostile guest meets by default (4096).
        sh(self.vnet + ["net", "add", "b", "--mode", "nat", "--mtu", str(self.opts.mtu), "--dns-upstream", INET_ADDR,
                        "--max-flows-per-guest", str(max(4096, self.opts.idle_flows))])
        self.vnet_port = self.vnet_guest(self.ns_guest, "10.0.2.15")
        if self.opts.ipv6:
            self.guest_ipv6(self.ns_guest, "fec0::15", "fec0::2")
        self.guest = ["ip", "netns", "exec", self.ns_guest]
        self.guest_if = "eth0"
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
                        "--disable-host-loopback"] + v6 + [str(sleeper.pid), "tap0"], stdout=log, stderr=log,
                       **OWN_SESSION)
        log.close()

        def configured():
            if p.poll() is not None:
                raise RuntimeError("slirp4netns exited: " + open(os.path.join(self.tmp, "slirp4netns.log")).read())
            addrs = sh(["ip", "-n", self.ns_guest, "-o", "addr", "show", "dev", "tap0"], check=False).stdout
            return "10.0.2.100" in addrs and (not self.opts.ipv6 or "inet6 fd00:" in addrs)
        wait_until(configured, what="slirp4netns to configure tap0")
        self.guest = ["ip", "netns", "exec", self.ns_guest]
        self.guest_if = "tap0"
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
                       stdout=log, stderr=log, cwd="/", **OWN_SESSION)
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
                     check=False).stdout.split()
            if "default" not in out or "dev" not in out:
                return False
            self.guest_if = out[out.index("dev") + 1]  # pasta copies the host's interface name
            return True
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
        self.guest_if = "eth0"
        return None

    # --- measurement ----------------------------------------------------
    def iperf_server(self, port=5201, addr=None):
        """iperf3 -s for one test on port, in the internet namespace, once it listens."""
        addr = addr or self.target
        server = self.start(["ip", "netns", "exec", self.ns_inet, "iperf3", "-s", "-1", "-B", addr, "-p", str(port)])
        proto = "tcp6" if ":" in addr else "tcp"
        wait_until(lambda: self.listening(server.pid, port, proto) or server.poll() is not None, what="iperf3 -s")
        return server

    def end_server(self, server):
        """Lets a one-test iperf3 -s finish; stops it if its client never came."""
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.stop(server)

    def iperf_args(self, extra, addr=None, port=5201):
        return ["iperf3", "-c", addr or self.target, "-p", str(port), "-J", "-t", str(self.opts.seconds)] + extra

    def iperf_result(self, stdout, stderr, extra):
        """(figures, None) from an iperf3 -J client's output, or (None, error)."""
        try:
            data = json.loads(stdout or "{}")
        except ValueError:
            data = {}
        if "end" not in data:
            return None, (data.get("error") or stderr.strip() or "no result")[:200]
        end = data["end"]
        if "-u" not in extra:  # TCP: the receiver's rate
            return {"gbps": end["sum_received"]["bits_per_second"] / 1e9}, None
        r = end.get("sum_received") or end["sum"]
        received = r["packets"] - r.get("lost_packets", 0)
        payload = int(extra[extra.index("-l") + 1])
        secs = r["seconds"] or self.opts.seconds
        return {"gbps": received * payload * 8 / secs / 1e9, "fps": received / secs}, None

    def iperf(self, extra, guest=None, addr=None, port=5201):
        """One iperf3 test from the guest (or `guest`, a command prefix) to a server of its own."""
        server = self.iperf_server(port, addr)
        omit = int(extra[extra.index("-O") + 1]) if "-O" in extra else 0
        res = sh((guest or self.guest) + self.iperf_args(extra, addr, port), check=False,
                 timeout=self.opts.seconds + omit + 30)
        self.end_server(server)
        return self.iperf_result(res.stdout, res.stderr, extra)

    def guest_py(self, code, *args, timeout):
        res = sh(self.guest + [PY, "-c", code] + [str(a) for a in args], check=False, timeout=timeout)
        try:
            return json.loads(res.stdout), None
        except ValueError:
            return None, (res.stderr.strip().splitlines() or ["no output"])[-1][:200]

    def repeat(self, fn):
        """Calls fn() self.repeats times; returns the results it gave and the
        first error. A run during which the hypervisor took more than
        --max-steal of this machine's CPU time is measured again, up to
        MAX_REDO times (bench/rounds.py): a stalled vCPU spoils latency and
        connection figures for reasons outside every stack."""
        runs, err = [], None
        for _ in range(self.repeats):
            r, e = self.steal.run(fn)
            if r:
                runs.append(r)
            err = err or e
        return runs, err

    @staticmethod
    def collect(out, errs, key, values, err):
        """out[key] is the median of values; with none, errs[key] says why."""
        if values:
            out[key] = statistics.median(values)
        elif err:
            errs[key] = err

    def measure_iperf(self, out, errs, tests):
        for test, extra in IPERF_TESTS.items():
            if test not in tests:
                continue
            runs, err = self.repeat(lambda: self.iperf(extra))
            if "-u" in extra:
                self.collect(out, errs, f"{test}_fps", [r["fps"] / 1e3 for r in runs], err)
                self.collect(out, errs, f"{test}_gbps", [r["gbps"] for r in runs], err)
            else:
                self.collect(out, errs, test, [r["gbps"] for r in runs], err)

    def measure_rr(self, out, errs):
        runs, err = self.repeat(lambda: self.guest_py(RR_CLIENT_PY, self.target, RR_PORT, self.opts.rr_count,
                                                      timeout=120))
        for key, field in (("rr_tps", "tps"), ("rr_us", "mean_us"), ("rr_median_us", "median_us"),
                           ("rr_p99_us", "p99_us")):
            self.collect(out, errs, key, [r[field] for r in runs], err)
        if runs:  # each percentile's median over the runs
            out["rr_pcts"] = {p: statistics.median(r["pcts"][p] for r in runs) for p in runs[0]["pcts"]}

    def measure_conn(self, out, errs):
        runs, err = self.repeat(lambda: self.guest_py(CONN_CLIENT_PY, self.target, CONN_PORT, self.opts.seconds,
                                                      timeout=self.opts.seconds + 60))
        for r in runs:
            if r["errors"]:
                err = f"{r['errors']} failed connects in one {self.opts.seconds}s run " + \
                      ", ".join(f"{k} x{v}" for k, v in r["kinds"].items())
        self.collect(out, errs, "conn_rate", [r["cps"] for r in runs], None)
        if err:
            errs["conn_rate"] = err

    def read_line(self, p, timeout):
        """The next line p prints, or RuntimeError with its stderr if none comes in time."""
        ready, _, _ = select.select([p.stdout], [], [], timeout)
        line = p.stdout.readline() if ready else ""
        if not line:
            if p.poll() is None:
                p.kill()
            raise RuntimeError(f"no answer within {timeout:.0f} s: " + (p.stderr.read() or "")[-300:].strip())
        return line

    def measure_idle(self, pid, out, errs):
        """--idle-flows idle TCP connections from the guest held open through
        the NAT: its resident memory and fds before, with them open, and a
        few seconds after closing them."""
        if not pid:
            errs["idle_opened"] = "no NAT process to measure (the kernel routes)"
            return
        n = self.opts.idle_flows
        server = self.start(["ip", "netns", "exec", self.ns_inet, PY, "-c", IDLE_SERVER_PY, self.target,
                             str(IDLE_PORT), str(n)])
        client = None
        try:
            proto = "tcp6" if self.opts.ipv6 else "tcp"
            wait_until(lambda: self.listening(server.pid, IDLE_PORT, proto), what="the idle flows' server")
            before = settle(pid, self.setup_fds)  # flows of the tests before (conn) may still linger
            client = self.start(self.guest + [PY, "-c", IDLE_CLIENT_PY, self.target, str(IDLE_PORT), str(n)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # Sequential connects: ~1000/s on a slow NAT, and failures end after 20 in a row.
            got = json.loads(self.read_line(client, 60 + n / 50))
            time.sleep(1)  # the NAT's last handshakes settle
            held = rss_kib(pid), fd_count(pid)
            client.stdin.write("close\n")
            client.stdin.flush()
            alive = json.loads(self.read_line(client, 60))["alive"]
            after = settle(pid, before[1])
        finally:
            if client:
                self.stop(client)
            self.stop(server)
        if None in before + held + after:
            raise RuntimeError(f"the NAT process {pid} went away during the idle flows")
        opened = got["opened"]
        out["idle_opened"], out["idle_held"] = float(opened), float(alive)
        if got["errors"]:
            errs["idle_opened"] = f"{opened} of {n} opened; {got['errors']} failed connects" + \
                (", the last 20 in a row" if opened < n else "") + ": " + \
                ", ".join(f"{k} x{v}" for k, v in got["kinds"].items())
        if alive < opened:
            errs["idle_held"] = f"{opened - alive} of the {opened} flows opened were closed or reset by the time " \
                                "of the measurement"
        if alive:
            # Per flow actually held, when the NAT refused or dropped some.
            out["idle_kib_per_flow"] = (held[0] - before[0]) / alive
            out["idle_fds_per_flow"] = (held[1] - before[1]) / alive
        out["idle_rss_after_kib"] = float(after[0] - before[0])
        out["idle_fds_after"] = float(after[1] - before[1])

    def add_delay(self, name):
        """RTT_DELAY_MS each way between the guest and its NAT; returns None,
        or why it could not be done."""
        if name == "vnet":
            # vnet's own impairment on the guest's port, both ways, with the
            # queue test_nat.test_delay_1gb_iperf uses (the default would drop
            # most of a 50 ms window).
            sh(self.vnet + ["port", "set", "b", str(self.vnet_port), "--delay", f"{RTT_DELAY_MS}ms",
                            "--direction", "both", "--queue", "8m"])
            return None
        # The others have no delay of their own: netem on the guest's
        # interface delays what the guest sends by the whole round trip.
        if shutil.which("modprobe"):
            sh(["modprobe", "sch_netem"], check=False)
        res = sh(self.guest + ["tc", "qdisc", "add", "dev", self.guest_if, "root", "netem", "delay",
                               f"{2 * RTT_DELAY_MS}ms", "limit", "100000"], check=False)
        if res.returncode != 0:
            return f"tc netem on {self.guest_if} failed, no sch_netem in this kernel? ({res.stderr.strip()[:100]})"
        return None

    def clear_delay(self, name):
        """Best effort: the port and the namespace go with the NAT's turn anyway."""
        try:
            if name == "vnet":
                sh(self.vnet + ["port", "set", "b", str(self.vnet_port), "--clear", "--direction", "both"],
                   check=False)
            else:
                sh(self.guest + ["tc", "qdisc", "del", "dev", self.guest_if, "root"], check=False)
        except (OSError, subprocess.SubprocessError) as e:
            print(f"  clearing the delay: {failure(e)}", file=sys.stderr)

    def measure_rtt(self, name, out, errs):
        """TCP both ways at 50 ms round trip (iperf3, the first 2 s of slow
        start left out), then RTT_EXACT_MIB each way checked by sha256."""
        # Every stack's guest may grow its TCP buffers to 16 MiB: at the
        # default 4 MiB tcp_wmem maximum the guest's own send buffer caps an
        # upload over 50 ms at ~400 Mbit/s whatever the NAT (benchmarks.md).
        sh(self.guest + ["sysctl", "-q", "-w"] + list(RTT_SYSCTLS))
        why = self.add_delay(name)
        if why:
            errs["rtt_down"] = why
            return
        try:
            for key, extra in (("rtt_down", ["-R"]), ("rtt_up", [])):
                runs, err = self.repeat(lambda: self.iperf(extra + ["-O", "2"]))
                self.collect(out, errs, key, [r["gbps"] * 1e3 for r in runs], err)
            if out.get("rtt_down") and out.get("rtt_up"):
                out["rtt_ratio"] = out["rtt_down"] / out["rtt_up"]
            size = RTT_EXACT_MIB << 20
            r, e = self.guest_py(EXACT_CLIENT_PY, self.target, EXACT_PORT, size, timeout=600)
            if not r:
                errs["rtt_exact"] = e
                return
            out["rtt_exact"] = 1.0 if r["down_ok"] and r["up_ok"] else 0.0
            out["rtt_connect_ms"] = r["connect_ms"]
            if not out["rtt_exact"]:
                errs["rtt_exact"] = (f"sha256 differs: download {'ok' if r['down_ok'] else 'BAD'} "
                                     f"({r['down_bytes']} of {size} bytes), upload {'ok' if r['up_ok'] else 'BAD'}")
        finally:
            self.clear_delay(name)

    def measure_up(self, out, errs):
        """vnet only: `vnet up` with a fresh run dir (so no saved state), in
        the host namespace, timed until it returns, which it does once the
        engine answers on its control socket (src/cli/daemon.cpp: the banner
        asks it for its status); then a `vnet status`; down again each time."""
        ups, statuses, err = [], [], None
        for i in range(self.opts.runs):
            run_dir = os.path.join(self.tmp, f"up-{i}")
            vnet = [self.opts.vnet, "--run-dir", run_dir]
            mark = len(self.nat_undo)
            try:
                t = time.perf_counter()
                # setns() in the child rather than `ip netns exec`, whose
                # private mount and /sys remount cost ~10 ms on a busy machine.
                sh(vnet + ["up"] + shlex.split(os.environ.get("VNET_UP_ARGS", "")), timeout=30,
                   preexec_fn=in_netns(self.ns_host))
                up = time.perf_counter() - t
                self.nat_undo.append(self.vnet_down(vnet, int(open(os.path.join(run_dir, "vnet.pid")).read())))
                t = time.perf_counter()
                status = sh(vnet + ["status", "--json"], check=False, timeout=30)
                took = time.perf_counter() - t
                if status.returncode != 0 or "networks" not in json.loads(status.stdout or "{}"):
                    err = err or f"vnet status right after up: {status.stderr.strip()[:200]}"
                    continue
                ups.append(up * 1e3)
                statuses.append(took * 1e3)
            finally:
                self.unwind(mark)
                shutil.rmtree(run_dir, ignore_errors=True)
        self.collect(out, errs, "up_ms", ups, err)
        self.collect(out, errs, "up_status_ms", statuses, err)

    def inet_rx_bytes(self):
        """Bytes the internet namespace's end of the uplink has received."""
        out = sh(["ip", "-n", self.ns_inet, "-s", "-j", "link", "show", "in0"]).stdout
        return json.loads(out)[0]["stats64"]["rx"]["bytes"]

    def iperf_all(self, guests):
        """Guest i toward its own iperf3 server on port 5201+i (iperf3 -s
        serves one test at a time), all at once; the sum of the receivers'
        rates, and the uplink's own count from 1 s after the last client
        started to 0.5 s before the first should end (a cross-check: the sum
        overstates the aggregate if the clients' seconds do not overlap)."""
        servers = [self.iperf_server(5201 + i, INET_ADDR) for i in range(len(guests))]
        clients, paths = [], []
        try:
            for i, g in enumerate(guests):
                paths.append(os.path.join(self.tmp, f"iperf-{i}.json"))
                with open(paths[-1], "w") as f:
                    clients.append(self.start(g + self.iperf_args([], INET_ADDR, 5201 + i), stdout=f))
            launched = time.monotonic()
            time.sleep(1)
            b0, t0 = self.inet_rx_bytes(), time.monotonic()
            time.sleep(max(0.5, self.opts.seconds - 1.5))
            b1, t1 = self.inet_rx_bytes(), time.monotonic()
            wire = (b1 - b0) * 8 / (t1 - t0) / 1e9 if t1 < launched + self.opts.seconds + 0.5 else None
            for c in clients:
                c.wait(timeout=self.opts.seconds + 120)
        finally:
            for c in clients:
                self.stop(c)
            for s in servers:
                self.end_server(s)
        results = [self.iperf_result(open(p).read(), "", []) for p in paths]
        failed = [e for r, e in results if not r]
        if failed:
            return None, f"{len(failed)} of {len(guests)} clients failed, e.g. {failed[0]}"
        return {"gbps": sum(r["gbps"] for r, _ in results), "wire": wire}, None

    def measure_guests(self, out, errs):
        """vnet only: --guests guest namespaces on the NAT network (10.0.2.16
        up, beside the guest at .15), each an iperf3 client toward the
        outside at the same time; one of them alone just before, each run."""
        mark = len(self.nat_undo)
        vnet = self.vnet
        try:
            guests = []
            for i in range(self.opts.guests):
                ns = f"bnat-m{i}-{self.tag}"
                self.add_ns(ns, self.nat_undo)
                port = self.vnet_guest(ns, f"10.0.2.{16 + i}")
                # Ports go before their namespaces (nat_undo runs latest first).
                self.nat_undo.append(lambda port=port: sh(vnet + ["port", "del", "b", str(port)], check=False))
                guests.append(["ip", "netns", "exec", ns])
            ones, sums, wires, err = [], [], [], None
            for _ in range(self.opts.runs):
                one, e1 = self.iperf([], guest=guests[0], addr=INET_ADDR)
                total, e2 = self.iperf_all(guests)
                err = err or e1 or e2
                if one and total:
                    ones.append(one["gbps"])
                    sums.append(total["gbps"])
                    if total["wire"] is not None:
                        wires.append(total["wire"])
        finally:
            self.unwind(mark)
        self.collect(out, errs, "guests_one", ones, err)
        self.collect(out, errs, "guests_sum", sums, err)
        self.collect(out, errs, "guests_wire", wires, None)
        if ones:
            out["guests_ratio"] = statistics.median(s / o for s, o in zip(sums, ones) if o)
        if err and ones:
            errs["guests_sum"] = err

    def measure(self, name, pid, tests):
        out, errs = {}, {}
        self.measure_iperf(out, errs, tests)
        if "rr" in tests:
            self.measure_rr(out, errs)
        if "conn" in tests:
            self.measure_conn(out, errs)
        rss = rss_kib(pid) if pid and not set(tests) & set(ONCE_TESTS) else None
        if rss is not None:  # after the traffic tests
            out["rss_mib"] = rss / 1024
        # rtt last: it leaves the guest's TCP buffers raised. A figure that
        # fails says why in its row and the others still run.
        once = (("idle", "idle_opened", False, lambda: self.measure_idle(pid, out, errs)),
                ("up", "up_ms", True, lambda: self.measure_up(out, errs)),
                ("guests64", "guests_sum", True, lambda: self.measure_guests(out, errs)),
                ("rtt", "rtt_down", False, lambda: self.measure_rtt(name, out, errs)))
        for test, key, vnet_only, fn in once:
            if test not in tests or (vnet_only and name != "vnet"):
                continue
            print(f"  {name}: {test} ...", file=sys.stderr)
            try:
                fn()
            except (RuntimeError, AssertionError, OSError, ValueError, KeyError, subprocess.SubprocessError) as e:
                errs[key] = failure(e)
        out.update(self.steal.figures())
        out["errors"] = errs
        print(f"  {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in out.items() if isinstance(v, float))
              + (f"; errors: {errs}" if errs else ""), file=sys.stderr)
        return out

    def turn(self, name, tests):
        """Sets up NAT `name`, measures `tests` through it, takes it down."""
        setups = {"vnet": self.setup_vnet, "pasta": self.setup_pasta, "slirp4netns": self.setup_slirp4netns,
                  "veth": self.setup_veth}
        self.steal = StealCheck(self.opts.max_steal)
        try:
            pid = setups[name]()
            self.setup_fds = fd_count(pid) if pid else None  # the idle figure's floor
            # Same client-side tuning whatever the guest namespace.
            self.tune(self.guest)
            return self.measure(name, pid, tests)
        except (RuntimeError, AssertionError, OSError, subprocess.SubprocessError) as e:
            msg = failure(e)
            print(f"  {name}: failed: {msg}", file=sys.stderr)
            return {"failed": msg}
        finally:
            self.stop_all()
            undo_all(self.nat_undo)
            self.guest = self.guest_if = self.vnet = self.vnet_port = None

    def run(self):
        # The traffic figures are measured in rounds, each stack once per
        # round in turn, so that a slow minute of the machine falls on every
        # stack alike instead of on one stack's block of runs; each figure is
        # the median over the rounds. The figures measured once get a fresh
        # NAT of their own: flows and buffers left by the traffic tests would
        # count in the idle flows' memory (libslirp's went from 12 to 255 KiB
        # per flow after them).
        per_round = [t for t in self.opts.tests if t not in ONCE_TESTS]
        once = [t for t in self.opts.tests if t in ONCE_TESTS]
        names = [n for n in NATS if n in self.opts.only]
        results = {}
        try:
            self.make_lab()
            if per_round:
                rounds = {n: [] for n in names}
                self.repeats = 1
                for r in range(self.opts.runs):
                    for name in names:
                        print(f"{name}, round {r + 1} of {self.opts.runs} ...", file=sys.stderr)
                        rounds[name].append(self.turn(name, per_round))
                for name in names:
                    merge(results.setdefault(name, {}), combine_rounds(rounds[name]))
            self.repeats = self.opts.runs
            for name in names if once else ():
                print(f"{name} ...", file=sys.stderr)
                merge(results.setdefault(name, {}), self.turn(name, once))
        finally:
            self.stop_all()
            undo_all(self.nat_undo)
            undo_all(self.undo)
            shutil.rmtree(self.tmp, ignore_errors=True)
        return results


def combine_rounds(rounds):
    """One stack's figures from its rounds: each the median over the rounds
    that measured it (the steal figures: the largest, and the sum of runs
    measured again); an error stands only for a figure no round measured."""
    out, errors = {}, {}
    keys = {k for r in rounds for k, v in r.items() if isinstance(v, float)}
    for key in keys:
        values = [r[key] for r in rounds if isinstance(r.get(key), float)]
        out[key] = max(values) if key == "steal_max_pct" else sum(values) if key == "steal_redone" \
            else statistics.median(values)
    pcts = [r["rr_pcts"] for r in rounds if r.get("rr_pcts")]
    if pcts:
        out["rr_pcts"] = {p: statistics.median(x[p] for x in pcts) for p in pcts[0]}
    for r in rounds:
        errors.update({k: e for k, e in r.get("errors", {}).items() if k not in out})
    failures = [r["failed"] for r in rounds if "failed" in r]
    if failures and len(failures) == len(rounds):
        out["failed"] = failures[0]
    elif failures:
        errors["rounds"] = f"{len(failures)} of {len(rounds)} rounds failed: {failures[0]}"
    out["errors"] = errors
    return out


def merge(results, more):
    """Adds one turn's figures (and errors, and failure) to a NAT's results."""
    errors = {**results.get("errors", {}), **more.get("errors", {})}
    if "failed" in more and "failed" in results:
        more = {**more, "failed": results["failed"] + "; " + more["failed"]}
    for key, both in (("steal_max_pct", max), ("steal_redone", lambda a, b: a + b)):
        if key in more and key in results:
            more = {**more, key: both(results[key], more[key])}
    results.update(more)
    if errors or "errors" in results:
        results["errors"] = errors


def report(results, opts):
    print(f"user-mode NAT, guest as client toward {INET6 if opts.ipv6 else INET_ADDR} in an 'internet' namespace; "
          f"MTU {opts.mtu}; iperf3 {opts.seconds}s, req/resp {opts.rr_count} round trips, connect loop {opts.seconds}s; "
          f"median of {opts.runs} rounds (stacks in turn); idle: {opts.idle_flows} flows, once; N guests: {opts.guests}; "
          f"50 ms RTT: guest TCP buffers up to 16 MiB, {RTT_EXACT_MIB} MiB byte-exact each way, once")
    w = 12
    print(f"{'measurement':<22} {'unit':<19} " + " ".join(f"{n:>{w}}" for n in NATS)
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
        print(f"{label:<22} {unit:<19} " + " ".join(cells) + f" {ratio('pasta'):>11} {ratio('slirp4netns'):>11} {ratio('veth'):>11}")
    for n in NATS:
        r = results.get(n)
        if r is None:
            continue
        if "failed" in r:
            print(f"{n}: n/a: {r['failed']}")
        for key, e in r.get("errors", {}).items():
            print(f"{n} {key}: {e}")


def raise_nofile(flows):
    """An fd limit inherited by every NAT started from here with room for
    `flows` idle flows at up to 3 fds each (pasta holds a socket and a
    timerfd per flow): the idle figure is to show what a flow costs, not the
    caller's limit (1024 soft under a plain sudo; vnet raises its soft limit
    to the hard one itself, the others do not all)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(hard, 3 * flows + 1024), int(open("/proc/sys/fs/nr_open").read()))
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):  # root without CAP_SYS_RESOURCE (a container) keeps its hard limit
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        print(f"nat_bench: the fd limit stays at {hard} (cannot raise the hard limit): a NAT with 2 fds per "
              f"flow holds at most ~{hard // 2} idle flows", file=sys.stderr)


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
    ap.add_argument("--idle-flows", type=int, default=10000, help="idle: TCP flows held open (default %(default)s)")
    ap.add_argument("--guests", type=int, default=64, help="guests64: guests at once on vnet (default %(default)s)")
    add_max_steal_option(ap)
    ap.add_argument("--json", action="store_true", help="also print the raw results as JSON")
    opts = ap.parse_args()
    opts.max_steal /= 100
    opts.only = [n.strip() for n in opts.only.split(",") if n.strip()]
    opts.tests = [n.strip() for n in opts.tests.split(",") if n.strip()]
    unknown = [t for t in opts.tests if t not in TESTS]
    if unknown:
        sys.exit(f"nat_bench: unknown test {', '.join(unknown)}; expected some of {','.join(TESTS)}")
    if not 1 <= opts.guests <= 200:
        sys.exit("nat_bench: --guests from 1 to 200 (10.0.2.16 up, in one /24)")
    if os.geteuid() != 0:
        sys.exit("nat_bench: needs root (namespaces and TAP devices)")
    if "idle" in opts.tests:
        raise_nofile(opts.idle_flows)
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
