"""NAT limits against one guest that asks for too much, with real namespace
guests (see natlib.py): per-guest pending connects, the per-network budget of
host send buffers, the TCP peek fallback for kernels without SO_PEEK_OFF, and
memory after a burst of flows."""

import hashlib
import os
import resource
import re
import subprocess
import time

from natlib import ECHO_PORT, HTTP_PORT, INET_ADDR, PY, NatTestCase, connect_result_py, listening
from vnetlib import sha256_of, wait_for

# Not routed by the internet namespace (no forwarding there): SYNs vanish.
BLACKHOLE = "203.0.113.5"
SINK_PORT = 5001

# Opens N non-blocking connects and holds them.
HOLD_CONNECTS_PY = r"""
import socket, sys, time
dst, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []
for _ in range(n):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex((dst, port))
    socks.append(s)
print("opened", len(socks), flush=True)
time.sleep(hold)
"""

# Accepts connections and never reads from them.
SINK_PY = r"""
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(64)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
"""

# N uploads that write zeros until killed.
UPLOADS_PY = r"""
import socket, sys, threading, time
dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
block = bytes(1 << 16)
def up():
    s = socket.create_connection((dst, port))
    try:
        while True:
            s.sendall(block)
    except OSError:
        pass
for _ in range(n):
    threading.Thread(target=up, daemon=True).start()
time.sleep(3600)
"""

# Holds N idle connections to the echo server.
IDLE_PY = r"""
import resource, socket, sys, time
dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
socks = [socket.create_connection((dst, port)) for _ in range(n)]
print("open", len(socks), flush=True)
time.sleep(3600)
"""


# N connections, each reset (SO_LINGER 0) as soon as it is established.
CHURN_PY = r"""
import socket, struct, sys, time
dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t, ok = time.monotonic(), 0
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    try:
        s.connect((dst, port))
        ok += 1
    except OSError:
        pass
    s.close()
print(ok, round(time.monotonic() - t, 2), flush=True)
"""


def engine_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


class NatLimitsTest(NatTestCase):
    def lab(self, *net_flags):
        self.build_lab()
        self.nat_net("nat", *net_flags)

    def test_blackhole_connects_do_not_fail_another_guests(self):
        # Issue 7 item 6: one guest's 300 connects to a black hole held the
        # network-wide pending-connect cap (256) for 20 s.
        self.lab()
        a, b = self.guest(), self.guest()
        c0 = self.nat_counters()
        hold = a.popen(self.cleanup, [PY, "-c", HOLD_CONNECTS_PY, BLACKHOLE, "80", "300", "30"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.assertTrue(hold.stdout.readline().startswith(b"opened"))
        wait_for(lambda: self.tcp_flows() >= 64, timeout=10, what="the black-hole connects pending")
        res = b.py(connect_result_py(), INET_ADDR, ECHO_PORT, 5).stdout.split()
        self.assertEqual(res[0], "connected", f"second guest: {res}, counters {self.nat_counters()}")
        c1 = self.nat_counters()
        self.assertGreater(c1.get("drop_guest_connects", 0), c0.get("drop_guest_connects", 0), c1)
        self.assertLessEqual(self.nat_status()["flows"]["pending_connects"], 64 + 1)
        print(f"\n  300 black-hole connects: {self.tcp_flows()} flows, the other guest connected in {res[1]} s")

    def test_flow_caps_are_settings(self):
        """--max-flows-per-guest bounds one guest's flows at the number set
        (and `status` shows it); another guest of the network still connects."""
        self.lab("--max-flows-per-guest", "40", "--max-flows", "100")
        self.assertEqual((self.nat_status()["flows"]["max_flows"], self.nat_status()["flows"]["max_flows_per_guest"]),
                         (100, 40))
        a, b = self.guest(), self.guest()
        srv = self.inet.popen(self.cleanup, [PY, "-c", SINK_PY, INET_ADDR, str(SINK_PORT)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(srv.pid, SINK_PORT), what="the sink listening")
        c0 = self.nat_counters()
        hold = a.popen(self.cleanup, [PY, "-c", HOLD_CONNECTS_PY, INET_ADDR, str(SINK_PORT), "60", "30"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.assertTrue(hold.stdout.readline().startswith(b"opened"))
        wait_for(lambda: self.nat_counters().get("drop_guest_flows", 0) > c0.get("drop_guest_flows", 0),
                 what="the guest's 41st flow refused")
        wait_for(lambda: self.tcp_flows() == 40, what="40 flows held")
        res = b.py(connect_result_py(), INET_ADDR, ECHO_PORT, 5).stdout.split()
        self.assertEqual(res[0], "connected", f"second guest: {res}")

    def test_send_buffer_budget(self):
        # Issue 7 item 8: 8 uploads to a server that never reads pinned a
        # fixed 4 MiB (8 MiB as the kernel counts) of send buffer each.
        self.lab()
        budget, floor = 32 << 20, 512 << 10  # NatConfig defaults
        sink = self.inet.popen(self.cleanup, [PY, "-c", SINK_PY, INET_ADDR, str(SINK_PORT)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(sink.pid, SINK_PORT), what="sink listening")
        g = self.guest()
        g.popen(self.cleanup, [PY, "-c", UPLOADS_PY, INET_ADDR, str(SINK_PORT), "8"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def queued():
            out = self.hostns.run(["ss", "-tmnH", "dst", f"{INET_ADDR}:{SINK_PORT}"]).stdout
            w = [int(x) for x in re.findall(r"[(,]w(\d+)", out)]
            tb = [int(x) for x in re.findall(r"[(,]tb(\d+)", out)]
            return w, tb

        wait_for(lambda: len(queued()[0]) == 8, timeout=10, what="8 host connections")
        time.sleep(6)  # the sink's receive buffers fill, then the send buffers
        w, tb = queued()
        print(f"\n  8 stalled uploads: send queues {sum(w) / 2**20:.1f} MiB, buffers {sum(tb) / 2**20:.1f} MiB "
              f"(budget {budget / 2**20:.0f} MiB), per flow {[round(x / 2**20, 1) for x in tb]}")
        self.assertGreater(sum(w), 4 << 20, "the uploads filled their buffers")
        self.assertLessEqual(sum(w), budget + 8 * floor)
        self.assertLessEqual(sum(tb), budget + 8 * floor)

    def test_forced_peek_fallback_transfer(self):
        # Issue 7 item 10: kernels without SO_PEEK_OFF for TCP; forced here.
        os.environ["VNET_TCP_NO_PEEK_OFF"] = "1"
        self.cleanup.add(lambda: os.environ.pop("VNET_TCP_NO_PEEK_OFF", None))
        body = os.urandom(24 << 20)
        self.build_lab(http_files={"big": body})
        os.environ.pop("VNET_TCP_NO_PEEK_OFF", None)
        self.nat_net("nat")
        g = self.guest()
        out = os.path.join(self.tmp, "big.out")
        t = time.monotonic()
        g.run(["busybox", "wget", "-q", "-O", out, f"http://{INET_ADDR}:{HTTP_PORT}/big"], timeout=120)
        dt = time.monotonic() - t
        self.assertEqual(os.path.getsize(out), len(body))
        self.assertEqual(sha256_of(out), hashlib.sha256(body).hexdigest())
        c = self.nat_counters()
        self.assertGreaterEqual(c["tcp_fallback_sent"], len(body), c)
        self.assertLessEqual(c["tcp_fallback_peeked"], 5 * c["tcp_fallback_sent"], c)
        print(f"\n  24 MiB with the peek fallback: {len(body) * 8 / dt / 1e6:.0f} Mbit/s, "
              f"{c['tcp_fallback_peeked'] / c['tcp_fallback_sent']:.2f} bytes peeked per byte sent")

    def test_connect_reset_churn_frees_flows_at_once(self):
        # A guest that opens and resets connections as fast as it can: each
        # flow (and its host socket) goes with the RST, nothing lingers in
        # TIME_WAIT, and another guest's connects keep working throughout.
        self.lab()
        churner, other = self.guest(), self.guest()
        time.sleep(1)
        base_fds, base_rss = engine_fds(self.e.pid), rss_kib(self.e.pid)
        churn = churner.popen(self.cleanup, [PY, "-c", CHURN_PY, INET_ADDR, str(ECHO_PORT), "3000"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        results = []
        while churn.poll() is None:
            results.append(other.py(connect_result_py(), INET_ADDR, ECHO_PORT, 3).stdout.split()[0])
            time.sleep(0.2)
        done, seconds = churn.stdout.read().decode().split()
        self.assertEqual(int(done), 3000, "every churn connect was accepted")
        self.assertTrue(results and all(r == "connected" for r in results), results)
        wait_for(lambda: self.tcp_flows() == 0, timeout=5, what="the reset flows gone")
        fds, rss = engine_fds(self.e.pid), rss_kib(self.e.pid)
        print(f"\n  3000 connect+RST in {seconds} s; the other guest's {len(results)} connects all succeeded; "
              f"engine fds {base_fds} -> {fds}, RSS {base_rss} -> {rss} KiB")
        self.assertLessEqual(fds, base_fds + 2)
        if os.environ.get("VNET_SANITIZED") != "1":
            self.assertLess(rss - base_rss, 4096, "RSS after the churn")

    def host_connections(self, port):
        """Established host-side connections to the internet's port (one per guest flow)."""
        out = self.hostns.run(["ss", "-tnH", "state", "established", "dst", f"{INET_ADDR}:{port}"]).stdout
        return len(out.splitlines())

    def test_memory_after_churn_and_per_flow(self):
        # Issue 7 item 9: RSS after a burst of flows was never returned.
        # Up to the default per-guest cap, as the fd limit allows the guest.
        FLOWS = min(4000, resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 100)
        self.lab()
        g = self.guest()
        time.sleep(1)
        base = rss_kib(self.e.pid)
        # Idle flows up to the default per-guest cap: what each costs.
        idle = g.popen(self.cleanup, [PY, "-c", IDLE_PY, INET_ADDR, str(ECHO_PORT), str(FLOWS)],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.assertTrue(idle.stdout.readline().startswith(b"open"))
        # Counted on the host side: a `vnet status` listing every flow would
        # itself churn the engine's heap and show up in its RSS.
        wait_for(lambda: self.host_connections(ECHO_PORT) >= FLOWS, timeout=30, what=f"{FLOWS} idle flows")
        time.sleep(1)
        per_flow = (rss_kib(self.e.pid) - base) * 1024 / FLOWS
        self.assertEqual(self.tcp_flows(), FLOWS)
        idle.kill()
        idle.wait()
        wait_for(lambda: self.tcp_flows() == 0, timeout=30, what="idle flows closed")
        peak = base + int(per_flow * FLOWS / 1024)
        # TIME_WAIT (2 s), then the heap trims that follow the flows' frees
        # by a second each.
        time.sleep(3)
        try:
            wait_for(lambda: rss_kib(self.e.pid) - base <= 256, timeout=7, interval=0.5, what="RSS back")
        except AssertionError:
            pass  # reported by the assertion below, with the figures
        after = rss_kib(self.e.pid)
        print(f"\n  RSS KiB: baseline {base}, with {FLOWS} flows {peak}, after they closed {after}; "
              f"{per_flow:.0f} B per idle flow")
        if os.environ.get("VNET_SANITIZED") == "1":
            # ASan's redzones and its quarantine of freed memory are most of
            # what RSS shows there: the flows still open and close under the
            # sanitizer, but the figures are the release build's to hold.
            print("  (sanitized engine: RSS figures not checked)")
            return
        self.assertLess(per_flow, 2048)  # RSS incl. the event loop registration and allocator slack
        # Within 256 KiB of the baseline: a leak of a few bytes per flow, the
        # event loop's fd and timer tables kept at their peak (~450 KiB for
        # 4000 flows), or heap not trimmed after the last flows left, would
        # show.
        self.assertLessEqual(after - base, 256, "RSS back at its baseline after the burst")
