"""The learning switch (and hub) with kernel stacks in namespaces as guests."""

import json
import subprocess
import os
import time
import unittest

from vnetlib import VnetTestCase, random_file, sha256_of, short_id, wait_for
from vnet_it import delta, listening, send_raw, guest, mac_of, macs_by_port, ping, ping_ok, ping_stats, port_ids

A, B, C = "10.0.0.1", "10.0.0.2", "10.0.0.3"


class SwitchTest(VnetTestCase):
    def lab(self, *net_flags, guests=2, vlans=None, mtu=None):
        e = self.engine()
        e.vnet("net", "add", "lab", *net_flags)
        out = []
        for i in range(guests):
            vlan = vlans[i] if vlans else None
            out.append(guest(e, self.cleanup, "lab", f"10.0.0.{i + 1}/24", mtu=mtu, vlan=vlan))
        return e, out

    def test_ping_transfer_iperf_and_counters(self):
        e, [(a, pa), (b, pb)] = self.lab()
        self.assertTrue(ping_ok(a, B, 3), "first ping between two TAP guests")

        # Counters: N echo requests of a known size from A to B.
        n, size = 20, 1000
        frame = 14 + 20 + 8 + size
        ca0, cb0 = e.counters("lab", pa), e.counters("lab", pb)
        res = ping(a, B, n, interval=0.05, size=size)
        tx, rx, _ = ping_stats(res)
        self.assertEqual((tx, rx), (n, n), res.stdout)
        ca1, cb1 = e.counters("lab", pa), e.counters("lab", pb)
        # A's port: n requests in (plus at most a few ARP frames), n replies out.
        self.assertGreaterEqual(delta(ca0, ca1, "rx_frames"), n)
        self.assertLessEqual(delta(ca0, ca1, "rx_frames"), n + 4)
        self.assertGreaterEqual(delta(ca0, ca1, "rx_bytes"), n * frame)
        self.assertLessEqual(delta(ca0, ca1, "rx_bytes"), n * frame + 4 * 64)
        self.assertGreaterEqual(delta(ca0, ca1, "tx_frames"), n)
        self.assertGreaterEqual(delta(ca0, ca1, "tx_bytes"), n * frame)
        # B's port saw the same frames the other way round.
        self.assertGreaterEqual(delta(cb0, cb1, "tx_frames"), n)
        self.assertLessEqual(delta(cb0, cb1, "tx_frames"), n + 4)
        self.assertGreaterEqual(delta(cb0, cb1, "tx_bytes"), n * frame)
        self.assertGreaterEqual(delta(cb0, cb1, "rx_frames"), n)
        self.assertGreaterEqual(delta(cb0, cb1, "rx_bytes"), n * frame)
        for c in (ca1, cb1):
            for k, v in c.items():
                if k.startswith("drop_") or k.startswith("imp_") or k == "mac_limit":
                    self.assertEqual(v, 0, f"{k} moved without a cause: {c}")

        # 4 MB over TCP, byte for byte.
        path = random_file(self.tmp, 4 << 20)
        self.assertEqual(self.transfer_nc(a, b, B, path, port=5001, timeout=60), sha256_of(path))
        cb2 = e.counters("lab", pb)
        self.assertGreater(delta(cb1, cb2, "tx_bytes"), 4 << 20, "B's port carried the file")

        # iperf3 TCP for 3 s.
        srv = b.popen(self.cleanup, ["iperf3", "-s", "-1", "-p", "5202"], stdout=subprocess.DEVNULL)
        wait_for(lambda: listening(srv.pid, 5202), what="iperf3 listening")
        res = a.run(["iperf3", "-c", B, "-p", "5202", "-t", "3", "-J"], timeout=30)
        report = json.loads(res.stdout)
        received = report["end"]["sum_received"]
        self.assertGreater(received["bits_per_second"], 50e6, "a switch on loopback-speed TAPs moves >50 Mbit/s")
        srv.wait(timeout=10)
        cb3 = e.counters("lab", pb)
        self.assertGreaterEqual(delta(cb2, cb3, "tx_bytes"), received["bytes"])

    def test_mac_learning(self):
        e, [(a, pa), (b, pb)] = self.lab()
        self.assertTrue(ping_ok(a, B, 2))
        macs = macs_by_port(e, "lab")
        self.assertEqual(macs.get(mac_of(a)), pa, macs)
        self.assertEqual(macs.get(mac_of(b)), pb, macs)
        self.assertEqual(len(macs), 2, macs)

    def _unicast_leak(self, mode):
        """Pings A->B and returns (frames C's port got, ICMP C's tcpdump saw)."""
        e, [(a, pa), (b, pb), (c, pc)] = self.lab("--mode", mode, guests=3)
        self.assertTrue(ping_ok(a, B, 2))  # ARP done, MACs learned
        c0 = e.counters("lab", pc)
        dump = c.popen(self.cleanup, ["timeout", "5", "tcpdump", "-i", "eth0", "-n", "-l", "-c", "10",
                                      "icmp and host 10.0.0.1 and host 10.0.0.2"])
        time.sleep(1.0)  # tcpdump attached
        self.assertTrue(ping_ok(a, B, 10, interval=0.05))
        out, _ = dump.communicate(timeout=15)
        c1 = e.counters("lab", pc)
        seen = [l for l in out.decode().splitlines() if "ICMP echo" in l]
        return delta(c0, c1, "tx_frames"), seen

    def test_hub_repeats_unicast(self):
        frames, seen = self._unicast_leak("hub")
        self.assertGreaterEqual(frames, 20, "hub: C's port carries A<->B unicast")
        self.assertEqual(len(seen), 10, "hub: C's tcpdump sees the echo requests and replies")

    def test_switch_keeps_unicast_private(self):
        frames, seen = self._unicast_leak("switch")
        self.assertLessEqual(frames, 2, "switch: C's port gets no A<->B unicast after learning")
        self.assertEqual(seen, [])

    def test_mac_aging(self):
        e, [(a, pa), (b, pb)] = self.lab("--mac-aging", "1s")
        self.assertEqual(e.network("lab")["mac_aging_s"], 1.0)
        self.assertTrue(ping_ok(a, B, 1))
        mac_a = mac_of(a)
        self.assertIn(mac_a, macs_by_port(e, "lab"))
        t0 = time.monotonic()
        wait_for(lambda: mac_a not in macs_by_port(e, "lab"), timeout=3.0, what="MAC aged out")
        self.assertGreater(time.monotonic() - t0, 0.5, "entry must live for about the aging time")
        # Traffic relearns it.
        self.assertTrue(ping_ok(a, B, 1))
        self.assertEqual(macs_by_port(e, "lab").get(mac_a), pa)

    def test_mac_limit(self):
        e, [(a, pa), (b, pb)] = self.lab("--mac-limit", "1")
        self.assertTrue(ping_ok(a, B, 2))
        old = mac_of(a)
        self.assertEqual(macs_by_port(e, "lab").get(old), pa)
        c0 = e.counters("lab", pa)
        self.assertEqual(c0["mac_limit"], 0)
        new = "02:00:00:00:aa:01"
        a.run(["ip", "link", "set", "eth0", "address", new])
        a.run(["ip", "neigh", "flush", "dev", "eth0"])
        ping(a, B, 3, wait=1)
        c1 = e.counters("lab", pa)
        self.assertGreater(delta(c0, c1, "mac_limit"), 0, c1)
        macs = macs_by_port(e, "lab")
        self.assertNotIn(new, macs, "a port at its limit learns no new MAC")
        self.assertEqual(macs.get(old), pa)

    def test_port_del_removes_port_and_macs(self):
        e, [(a, pa), (b, pb)] = self.lab()
        self.assertTrue(ping_ok(a, B, 2))
        mac_a = mac_of(a)
        e.vnet("port", "del", "lab", str(pa))
        self.assertNotIn(pa, port_ids(e, "lab"))
        self.assertNotIn(mac_a, macs_by_port(e, "lab"))
        self.assertIn(pb, port_ids(e, "lab"))
        # The TAP device went away with the port.
        res = a.run(["ip", "link", "show", "eth0"], check=False)
        self.assertNotEqual(res.returncode, 0, "TAP eth0 should be gone")
        self.assertFalse(ping_ok(b, A, 2, wait=1))

    def test_link_down_and_up(self):
        e, [(a, pa), (b, pb)] = self.lab()
        self.assertTrue(ping_ok(a, B, 2))
        e.vnet("port", "set", "lab", str(pa), "--link", "down")
        self.assertEqual(e.port("lab", pa)["link"], "down")
        c0 = e.counters("lab", pa)
        res = ping(a, B, 3, wait=1)
        self.assertEqual(ping_stats(res)[1], 0, res.stdout)
        c1 = e.counters("lab", pa)
        self.assertGreaterEqual(delta(c0, c1, "drop_down"), 3)
        self.assertEqual(delta(c0, c1, "rx_frames"), 0)
        e.vnet("port", "set", "lab", str(pa), "--link", "up")
        self.assertEqual(e.port("lab", pa)["link"], "up")
        self.assertTrue(ping_ok(a, B, 3))

    def test_vlans_isolate(self):
        e, [(a, pa), (b, pb), (c, pc)] = self.lab(guests=3, vlans=[10, 10, 20])
        self.assertEqual([e.port("lab", p)["vlan"] for p in (pa, pb, pc)], [10, 10, 20])
        self.assertTrue(ping_ok(a, B, 3), "same VLAN")
        self.assertFalse(ping_ok(a, C, 2, wait=1), "VLAN 10 must not reach VLAN 20")
        self.assertFalse(ping_ok(c, B, 2, wait=1), "VLAN 20 must not reach VLAN 10")
        self.assertEqual(e.counters("lab", pc)["tx_frames"], 0, "nothing from VLAN 10 reached C")
        # A frame tagged for VLAN 20 from a VLAN 10 port is refused and counted.
        c0 = e.counters("lab", pa)
        src = mac_of(a).replace(":", "")
        tagged = lambda vid: "ffffffffffff" + src + "8100" + f"{vid:04x}" + "88b5" + "00" * 46
        send_raw(a, [tagged(20), tagged(20), tagged(20)])
        c1 = wait_for(lambda: (c := e.counters("lab", pa))["drop_vlan"] >= 3 and c, timeout=3,
                      what="drop_vlan counted")
        self.assertEqual(delta(c0, c1, "drop_vlan"), 3)
        self.assertEqual(delta(c0, c1, "rx_frames"), 0)
        self.assertEqual(e.counters("lab", pc)["tx_frames"], 0, "the VLAN 20 tag did not let it into VLAN 20")

    def test_oversize_dropped(self):
        e, [(a, pa), (b, pb)] = self.lab("--mtu", "1500", mtu=9000)
        self.assertTrue(ping_ok(a, B, 2, size=1400), "frames within the MTU pass")
        c0 = e.counters("lab", pa)
        res = ping(a, B, 3, size=4000, wait=1)
        self.assertEqual(ping_stats(res)[1], 0, "a 4042-byte frame exceeds 1500+18")
        c1 = e.counters("lab", pa)
        self.assertGreaterEqual(delta(c0, c1, "drop_oversize"), 3)
        self.assertEqual(delta(c0, c1, "rx_frames"), 0)
        self.assertTrue(ping_ok(a, B, 2, size=1472), "largest frame (1514 bytes) still passes")


if __name__ == "__main__":
    unittest.main()
