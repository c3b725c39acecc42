"""bench/tap_floor.cpp, the floor switch_bench.py measures vnet's switch
against: two namespaces' TAPs joined by it must pass real kernel traffic
intact (ping, and a TCP transfer equal by sha256), set up by the bench's own
code, in a session of its own as every stack's forwarder, and it must stop
on SIGTERM. A broken floor would read as a missing column, or as a floor
vnet beats, so it is tested like a peer."""

import hashlib
import os
import shutil
import subprocess
import sys
import time
import types
import unittest

from vnetlib import need_root

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import switch_bench  # noqa: E402

VNET_BIN = os.environ.get("VNET_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build", "vnet"))
FLOOR_BIN = os.path.join(os.path.dirname(os.path.abspath(VNET_BIN)), "bench", "tap_floor")


class TapFloorTest(unittest.TestCase):
    def setUp(self):
        need_root(self)
        self.assertTrue(os.access(FLOOR_BIN, os.X_OK), f"{FLOOR_BIN} not built (ninja -C build tap_floor)")
        opts = types.SimpleNamespace(floor=FLOOR_BIN, mtu=1500, vnet=VNET_BIN)
        self.bench = switch_bench.Bench(opts)
        self.addCleanup(self.tear_down_bench)
        self.bench.make_namespaces()
        self.bench.setup_floor()

    def tear_down_bench(self):
        self.bench.stop_all()
        while self.bench.undo:
            self.bench.undo.pop()()
        shutil.rmtree(self.bench.tmp, ignore_errors=True)

    def in_ns(self, ns, args, **kw):
        return subprocess.run(["ip", "netns", "exec", ns] + args, capture_output=True, timeout=60, **kw)

    def test_kernel_traffic_crosses_it_intact(self):
        ping = self.in_ns(self.bench.ns_a, ["busybox", "ping", "-c", "3", "-W", "2", switch_bench.B_ADDR])
        self.assertEqual(ping.returncode, 0, (ping.stdout + ping.stderr).decode(errors="replace"))
        data = os.urandom(8 << 20)
        received_path = os.path.join(self.bench.tmp, "received")
        with open(received_path, "wb") as received_file:  # a file, not a pipe nobody reads until the end
            server = subprocess.Popen(["ip", "netns", "exec", self.bench.ns_b, "nc", "-l", "-d", switch_bench.B_ADDR,
                                       "5201"], stdin=subprocess.DEVNULL, stdout=received_file)
        self.addCleanup(lambda: server.poll() is None and server.kill())
        for _ in range(50):  # until the server listens
            if b":5201" in self.in_ns(self.bench.ns_b, ["ss", "-Htln"]).stdout:
                break
            time.sleep(0.1)
        sent = self.in_ns(self.bench.ns_a, ["nc", "-N", switch_bench.B_ADDR, "5201"], input=data)
        self.assertEqual(sent.returncode, 0, sent.stderr)
        self.assertEqual(server.wait(timeout=30), 0)
        with open(received_path, "rb") as received:
            self.assertEqual(hashlib.sha256(received.read()).hexdigest(), hashlib.sha256(data).hexdigest())

    def test_it_runs_in_a_session_of_its_own(self):
        # As vnet's daemon does: with autogroup scheduling, a forwarder in the
        # bench's session would share the iperf3 processes' CPU time.
        floor = self.bench.procs[-1]
        self.assertEqual(os.getsid(floor.pid), floor.pid)
        self.assertNotEqual(os.getsid(floor.pid), os.getsid(0))

    def test_it_stops_on_sigterm(self):
        floor = self.bench.procs[-1]
        floor.terminate()
        self.assertEqual(floor.wait(timeout=5), 0)


if __name__ == "__main__":
    unittest.main()
