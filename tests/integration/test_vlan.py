"""802.1Q: access ports (untagged, one VLAN) and trunk ports (tagged).

- Guests on different access VLANs cannot reach each other; on the same one
  they can.
- A trunk port (trunk=10:20) to a namespace whose frames carry tags: the
  8021q module cannot load on every machine, so the trunk side is crafted
  with scapy, and checked with `tcpdump -e`. A frame tagged 10 from the trunk
  reaches the VLAN-10 access guest untagged (its kernel answers the ping) and
  the answer comes back on the trunk tagged 10; the same for VLAN 20; a tag
  the trunk does not carry is dropped and counted (drop_vlan).
"""

import os
import subprocess
import time
import unittest

from vnetlib import Netns, VnetTestCase, have, run, wait_for

NET = "lan"
SYSTEM_PYTHON = "/usr/bin/python3"

TRUNK_SENDER = r"""
import sys
from scapy.all import Ether, Dot1Q, IP, ICMP, sendp
me, peers = sys.argv[1], sys.argv[2:]
frames = []
for item in peers:
    vid, mac, dst, src = item.split(",")
    frames.append(Ether(src=me, dst=mac) / Dot1Q(vlan=int(vid)) / IP(src=src, dst=dst) / ICMP(id=0x4242, seq=1) / (b"v" * 32))
for _ in range(3):
    sendp(frames, iface="eth0", verbose=False)
"""


def mac_of(ns, ifname="eth0"):
    return ns.run(["cat", f"/sys/class/net/{ifname}/address"]).stdout.strip()


class VlanTest(VnetTestCase):
    def setUp(self):
        super().setUp()
        for cmd in ("busybox", "tcpdump"):
            if not have(cmd):
                self.skipTest(f"{cmd} not installed")

    def lab(self):
        e = self.engine()
        e.vnet("net", "add", NET)
        return e

    def guest(self, e, cidr, spec_extra):
        ns = Netns(self.cleanup, prefix="vl")
        ns.run(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
        port = e.add_port(NET, f"tap,ifname=eth0,netns={ns.name}{spec_extra}")
        ns.configure("eth0", cidr)
        return ns, port

    def test_access_vlans_isolate(self):
        e = self.lab()
        a, pa = self.guest(e, "10.50.0.1/24", ",vlan=10")
        b, pb = self.guest(e, "10.50.0.2/24", ",vlan=10")
        c, pc = self.guest(e, "10.50.0.3/24", ",vlan=20")
        self.assertEqual(a.ping("10.50.0.2", count=2, interval=0.2).returncode, 0, "same VLAN")
        self.assertNotEqual(a.ping("10.50.0.3", count=2, interval=0.2, timeout=10).returncode, 0,
                            "VLAN 10 must not reach VLAN 20")
        self.assertEqual(e.counters(NET, pc)["tx_frames"], 0, "nothing of VLAN 10 left through C's port")

    def test_trunk_carries_both_vlans_tagged(self):
        # scapy comes from Debian (python3-scapy): the system's python3.
        self.assertEqual(run([SYSTEM_PYTHON, "-c", "import scapy"], check=False).returncode, 0,
                         "python3-scapy must be installed")
        e = self.lab()
        a, pa = self.guest(e, "10.10.0.1/24", ",vlan=10")
        c, pc = self.guest(e, "10.20.0.1/24", ",vlan=20")
        t, pt = self.guest(e, "192.0.2.99/32", ",trunk=10:20")
        port = e.port(NET, pt)
        self.assertEqual((port["trunk"], port["vlan"]), ("10,20", 0))
        tmac, amac, cmac = mac_of(t), mac_of(a), mac_of(c)
        # The access guests answer the trunk's addresses at its MAC (no ARP
        # on the trunk side: its kernel has no VLAN devices).
        a.run(["ip", "neigh", "replace", "10.10.0.2", "lladdr", tmac, "dev", "eth0"])
        c.run(["ip", "neigh", "replace", "10.20.0.2", "lladdr", tmac, "dev", "eth0"])

        # tcpdump -e on the trunk and on guest A: link-level headers, VLAN tags.
        dumps = {}
        for name, ns in (("trunk", t), ("a", a)):
            path = os.path.join(self.tmp, f"{name}.txt")
            out = open(path, "w")
            self.cleanup.add(out.close)
            proc = ns.popen(self.cleanup, ["tcpdump", "-t", "-e", "-n", "-l", "-i", "eth0"],
                            stdout=out, stderr=subprocess.PIPE)
            dumps[name] = (path, proc)
        for path, proc in dumps.values():
            while b"listening" not in (line := proc.stderr.readline()):
                self.assertTrue(line, "tcpdump did not start")

        script = os.path.join(self.tmp, "trunk_send.py")
        with open(script, "w") as f:
            f.write(TRUNK_SENDER)
        before = e.counters(NET, pt)
        t.run([SYSTEM_PYTHON, script, tmac,
               f"10,{amac},10.10.0.1,10.10.0.2", f"20,{cmac},10.20.0.1,10.20.0.2", f"30,{amac},10.10.0.1,10.10.0.2"],
              timeout=60)

        def lines(name):
            with open(dumps[name][0]) as f:
                return f.read().splitlines()

        def replies(vid, src_mac):
            return [l for l in lines("trunk") if l.startswith(src_mac) and f"vlan {vid}," in l and "echo reply" in l]

        try:
            wait_for(lambda: len(replies(10, amac)) >= 3 and len(replies(20, cmac)) >= 3, timeout=10,
                     what="tagged echo replies on the trunk")
        except AssertionError:
            print("trunk:", *lines("trunk"), "a:", *lines("a"), sep="\n")
            raise
        # Nothing comes back on the trunk untagged or with the wrong VLAN.
        for l in lines("trunk"):
            if l.startswith(amac):
                self.assertIn("vlan 10,", l)
            if l.startswith(cmac):
                self.assertIn("vlan 20,", l)
        # Guest A saw the requests untagged: its kernel has no VLAN devices
        # and still answered, and tcpdump shows no tag.
        requests_at_a = [l for l in lines("a") if l.startswith(tmac) and "echo request" in l]
        self.assertGreaterEqual(len(requests_at_a), 3, lines("a"))
        for l in requests_at_a:
            self.assertNotIn("vlan", l)
            self.assertIn("ethertype IPv4", l)
        after = e.counters(NET, pt)
        self.assertEqual(after["drop_vlan"] - before["drop_vlan"], 3, "the VLAN 30 frames")
        self.assertEqual(after["rx_frames"] - before["rx_frames"], 6)
        self.assertEqual(e.counters(NET, pc)["tx_frames"] >= 3, True)
        # The VLAN-20 guest never saw VLAN 10's requests, and vice versa.
        self.assertEqual(len([l for l in lines("a") if "10.20.0" in l]), 0)


if __name__ == "__main__":
    unittest.main()
