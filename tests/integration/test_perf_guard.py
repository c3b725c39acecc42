"""A regression guard for the NAT's TCP fast path, made of counts, not times.

A guest (a kernel in a namespace, on a TAP, MTU 1500) moves 48 MiB each way
through a NAT network to nc in the host namespace, byte-exact by sha256.
While it runs we count, per MiB moved:
  - frames that cross the NAT gateway's port (its port counters): with
    offloads a guest's TSO segment reaches the gateway whole and the
    gateway sends 64 KiB super-segments toward the guest, ~16 frames per
    MiB; cutting them into MSS frames costs ~720 per MiB;
  - system calls the engine makes (strace -c attached to it): ~50-70 per
    MiB with super-segments, ~1300-1800 per MiB when each MSS costs a peek
    or a send and a TAP write.
Counts do not depend on how busy the machine is, so the ceilings can sit
far from both sides: a few times above what the fast path needs, a few
times below what the per-MSS path costs.

The same kind of count guards connection setup: a guest opens short
connections (connect, read the server's one byte, close) one after another,
and the engine's system calls per connection stay under a ceiling.
"""

import os
import re
import signal
import subprocess
import time
import unittest

from natlib import GATEWAY, GATEWAY_MAC, PY, NatTestCase, enable_ipv6, listening
from vnetlib import random_file, sha256_of, wait_for

SIZE = 48 << 20
MIB = SIZE / (1 << 20)
# Per MiB moved. Measured: offloaded ~16 frames and 50-70 syscalls, per-MSS
# path ~720 frames and 1300-1800 syscalls.
MAX_FRAMES_PER_MIB = 120
MAX_SYSCALLS_PER_MIB = 400
GATEWAY6 = "fec0::2"
# Per short connection (SYN to the end of both FINs), the loop's epoll_wait
# and sched_yield left out (they follow timing and busy polling, not the
# path). Measured 19.7 (socket, connect, TCP_NODELAY, SO_SNDBUF,
# SO_PEEK_OFF, epoll registration, 5 TAP reads and 3 writes, 2 recv,
# shutdown, close); it was 29.0 when every connection also read SO_SNDBUF,
# SO_ERROR and SO_MEMINFO back, tried SO_SNDBUFFORCE, drew its ISN with
# getrandom and sent the host's FIN apart from its last data.
MAX_SYSCALLS_PER_CONNECTION = 25
CONNECTIONS = 400

# Host side: each accepted connection gets one byte, then is closed.
ONE_BYTE_SERVER_PY = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
while True:
    c, _ = s.accept()
    c.sendall(b"x")
    c.close()
"""

# Guest side: N connections one after another; prints how many got the byte.
SHORT_CONNECTIONS_PY = r"""
import socket, sys
ok = 0
for _ in range(int(sys.argv[3])):
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
    ok += s.recv(1) == b"x"
    s.close()
print(ok)
"""


class Strace:
    """strace -c attached to a running process until stop(); the summary's
    total number of calls."""

    def __init__(self, cleanup, pid, out_path):
        self.out_path = out_path
        self.proc = subprocess.Popen(["strace", "-c", "-f", "-q", "-o", out_path, "-p", str(pid)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cleanup.add(self.stop)
        time.sleep(0.5)  # attached (strace needs no more than a moment)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=30)

    def summary(self):
        self.stop()
        with open(self.out_path) as f:
            return f.read()

    def total_calls(self):
        text = self.summary()
        m = re.search(r"^-+.*\n\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?total\s*$", text, re.M)
        if not m:
            raise AssertionError(f"no total in strace's summary:\n{text}")
        return int(m.group(1))

    def calls_by_name(self):
        """{syscall: calls} from the summary's rows."""
        rows = re.findall(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", self.summary(), re.M)
        return {name: int(calls) for calls, name in rows if name != "total"}


class PerfGuardTest(NatTestCase):
    def gateway_port(self):
        ports = self.e.network("nat")["ports"]
        return next(p for p in ports if p["kind"] == "nat")["counters"]

    def test_tcp_mtu1500_counts_per_mib(self):
        self.build_lab()
        self.nat_net("nat", "--mtu", "1500")
        g = self.guest()
        g.run(["ip", "link", "set", "eth0", "mtu", "1500"])
        self.check_counts(g, GATEWAY, "127.0.0.1")

    def test_tcp_over_ipv6_mtu1500_counts_per_mib(self):
        """The same over IPv6: the guest's TSO6 segments reach the gateway
        whole and TCPV6 super-segments go back (guest fec0::15 to the host's
        ::1 through fec0::2)."""
        self.build_lab()
        enable_ipv6(self.hostns)
        self.nat_net("nat", "--mtu", "1500")
        g = self.guest(dhcp=False)
        g.run(["ip", "link", "set", "eth0", "mtu", "1500"])
        g.run(["sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_dad=0"])
        enable_ipv6(g.ns, "eth0")
        g.run(["ip", "-6", "addr", "add", "fec0::15/64", "dev", "eth0", "nodad"])
        g.run(["ip", "-6", "neigh", "replace", GATEWAY6, "lladdr", GATEWAY_MAC, "dev", "eth0", "nud", "permanent"])
        g.run(["ip", "-6", "route", "replace", "default", "via", GATEWAY6, "dev", "eth0"])
        self.check_counts(g, GATEWAY6, "::1")

    def test_tcp_connection_setup_counts(self):
        self.build_lab()
        self.nat_net("nat", "--mtu", "1500")
        g = self.guest()
        port = 12347
        srv = self.hostns.popen(self.cleanup, [PY, "-c", ONE_BYTE_SERVER_PY, str(port)])
        wait_for(lambda: listening(srv.pid, port), what="the one-byte server listening")
        # A few connections first, so the measured ones find the engine's
        # per-network state (ARP, buffers) already in place.
        g.py(SHORT_CONNECTIONS_PY, GATEWAY, port, 5, timeout=30)
        trace = Strace(self.cleanup, self.e.pid, os.path.join(self.tmp, "strace-connections"))
        out = g.py(SHORT_CONNECTIONS_PY, GATEWAY, port, CONNECTIONS, timeout=120)
        # The last connection's closing segments may still be on their way.
        time.sleep(0.3)
        by_name = trace.calls_by_name()
        self.assertEqual(int(out.stdout.strip()), CONNECTIONS, "a connection did not get the server's byte")
        # The loop's waiting and polling depend on timing, not on the path.
        waits = sum(by_name.get(n, 0) for n in ("epoll_wait", "sched_yield"))
        calls = sum(by_name.values()) - waits
        per = calls / CONNECTIONS
        print(f"\n  {per:.1f} engine syscalls per short connection ({calls} for {CONNECTIONS}; "
              f"{waits / CONNECTIONS:.1f} more waiting and polling)")
        self.assertLessEqual(per, MAX_SYSCALLS_PER_CONNECTION,
                             f"{per:.1f} engine syscalls per connection (ceiling {MAX_SYSCALLS_PER_CONNECTION})")

    def check_counts(self, g, gateway, host_addr):
        path = random_file(self.tmp, SIZE)
        want = sha256_of(path)
        port = 12346
        results = {}

        def measure(name, transfer):
            before = self.gateway_port()
            trace = Strace(self.cleanup, self.e.pid, os.path.join(self.tmp, f"strace-{name}"))
            t = time.monotonic()
            transfer()
            secs = time.monotonic() - t
            calls = trace.total_calls()
            after = self.gateway_port()
            # Frames toward the guest leave the gateway as its rx; the
            # guest's frames reach it as its tx.
            key = "rx_frames" if name == "download" else "tx_frames"
            frames = after[key] - before[key]
            results[name] = (frames / MIB, calls / MIB, secs)

        def download():
            srv = self.host_listener(port, send_path=path, addr=host_addr)
            out = os.path.join(self.tmp, "down")
            g.sh(f"nc -d {gateway} {port} > {out}", timeout=60)
            srv.wait(timeout=10)
            self.assertEqual(sha256_of(out), want, "host->guest data differs")

        def upload():
            out = os.path.join(self.tmp, "up")
            rx = self.host_listener(port, out_path=out, addr=host_addr)
            g.sh(f"nc -N {gateway} {port} < {path}", timeout=60)
            rx.wait(timeout=60)
            self.assertEqual(sha256_of(out), want, "guest->host data differs")

        measure("download", download)
        measure("upload", upload)
        print(f"\n  per MiB at MTU 1500 to {gateway}: " + ", ".join(
            f"{n} {f:.0f} frames, {c:.0f} syscalls ({s:.1f} s under strace)" for n, (f, c, s) in results.items()))
        for name, (frames, calls, _) in results.items():
            self.assertLessEqual(frames, MAX_FRAMES_PER_MIB,
                                 f"{name}: {frames:.0f} frames per MiB cross the gateway: TCP is being cut into "
                                 "MSS frames (offloads lost?)")
            self.assertLessEqual(calls, MAX_SYSCALLS_PER_MIB,
                                 f"{name}: {calls:.0f} engine syscalls per MiB (ceiling {MAX_SYSCALLS_PER_MIB})")


if __name__ == "__main__":
    unittest.main()
