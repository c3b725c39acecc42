"""VXLAN ports (RFC 7348) against real tunnel endpoints.

Each "host" is a test namespace; the underlay between hosts is a veth pair
inside them (no route leads anywhere else). The peers are the Linux kernel's
own `vxlan` device and other vnet engines; the guests are namespaces on
TAPs. Multicast runs in one namespace whose only interface is loopback.
"""

import os
import subprocess
import unittest

from vnetlib import Netns, VnetTestCase, have, random_file, run, sha256_of, wait_for

VNI = 4242


def underlay(cleanup, a, b, subnet):
    """A veth between host namespaces a and b: a is subnet.1, b is subnet.2."""
    ends = (f"u{os.getpid() % 10000}{subnet.split('.')[2]}a", f"u{os.getpid() % 10000}{subnet.split('.')[2]}b")
    run(["ip", "link", "add", ends[0], "netns", a.name, "type", "veth", "peer", "name", ends[1], "netns", b.name])
    a.configure(ends[0], f"{subnet}.1/24")
    b.configure(ends[1], f"{subnet}.2/24")
    return ends


class VxlanTest(VnetTestCase):
    def setUp(self):
        super().setUp()
        for cmd in ("busybox", "tcpdump", "nc", "ethtool"):
            if not have(cmd):
                self.fail(f"{cmd} is required")

    def host_engine(self, host):
        e = self.engine(netns=host)
        e.vnet("net", "add", "lan")
        return e

    def transfer_checked(self, sender, receiver, addr):
        src = random_file(self.tmp, 3 << 20)
        self.assertEqual(self.transfer_nc(sender, receiver, addr, src), sha256_of(src))

    def test_a_kernel_vxlan_device_and_vnet_form_one_segment(self):
        host_a, host_b = Netns(self.cleanup, "vxa"), Netns(self.cleanup, "vxb")
        _, end_b = underlay(self.cleanup, host_a, host_b, "192.168.77")
        # Host B: the kernel's vxlan device is the far end, and host B's own
        # stack on it is the guest there.
        host_b.run(["ip", "link", "add", "vx0", "type", "vxlan", "id", str(VNI), "remote", "192.168.77.1",
                    "local", "192.168.77.2", "dstport", "4789", "dev", end_b])
        host_b.configure("vx0", "10.77.0.2/24")
        # Over a veth nothing computes checksums left to offload, so the
        # kernel must fill in the inner ones itself (a NIC would).
        host_b.run(["ethtool", "-K", "vx0", "tx", "off"])
        # A second device on another VNI: its frames reach vnet's port and
        # must be dropped there, not delivered.
        host_b.run(["ip", "link", "add", "vx1", "type", "vxlan", "id", str(VNI + 1), "remote", "192.168.77.1",
                    "local", "192.168.77.2", "dstport", "4789", "dev", end_b])
        host_b.configure("vx1", "10.78.0.2/24")

        e = self.host_engine(host_a)
        port = e.add_port("lan", f"vxlan,vni={VNI},remote=192.168.77.2")
        guest, _ = e.add_tap_guest(self.cleanup, "lan", "10.77.0.1/24", mtu=1450)
        self.assertEqual(e.port("lan", port)["kind"], "vxlan")
        self.assertIn("path to 192.168.77.2:4789 has MTU 1500", e.log(), "the MTU advice for a 65520 network")

        dump_path = os.path.join(self.tmp, "underlay.txt")
        with open(dump_path, "w") as out:
            dump = host_b.popen(self.cleanup, ["tcpdump", "-n", "-l", "-i", end_b, "udp", "port", "4789"],
                                stdout=out, stderr=subprocess.PIPE)
            while b"listening" not in (line := dump.stderr.readline()):
                self.assertTrue(line, "tcpdump did not start")
            res = guest.ping("10.77.0.2", count=3, interval=0.2)
            self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
            wait_for(lambda: "ICMP echo reply" in open(dump_path).read(), what="tcpdump saw the tunnelled replies")
        text = open(dump_path).read()
        self.assertIn(f"VXLAN, flags [I] (0x08), vni {VNI}", text)
        self.assertIn("10.77.0.1 > 10.77.0.2: ICMP echo request", text)
        self.assertIn("192.168.77.1.", text)  # the outer source: vnet's host

        self.transfer_checked(guest, host_b, "10.77.0.2")
        self.transfer_checked(host_b, guest, "10.77.0.1")
        # Frames of the other VNI: counted, never delivered.
        before = e.counters("lan", port)["drop_tunnel"]
        host_b.ping("10.78.0.1", count=2, interval=0.2)
        wait_for(lambda: e.counters("lan", port)["drop_tunnel"] > before, what="the other VNI's frames counted")

    def test_two_engines_learn_which_endpoint_each_guest_is_behind(self):
        # Host A's engine has two remotes, B and C; B and C each know only A.
        host_a, host_b, host_c = (Netns(self.cleanup, p) for p in ("vxa", "vxb", "vxc"))
        underlay(self.cleanup, host_a, host_b, "192.168.77")
        underlay(self.cleanup, host_a, host_c, "192.168.78")
        a, b, c = (self.host_engine(h) for h in (host_a, host_b, host_c))
        a.add_port("lan", f"vxlan,vni={VNI},remote=192.168.77.2,remote=192.168.78.2")
        b.add_port("lan", f"vxlan,vni={VNI},remote=192.168.77.1")
        pc = c.add_port("lan", f"vxlan,vni={VNI},remote=192.168.78.1")
        ga, _ = a.add_tap_guest(self.cleanup, "lan", "10.77.0.1/24", mtu=1450)
        gb, _ = b.add_tap_guest(self.cleanup, "lan", "10.77.0.2/24", mtu=1450)
        gc, _ = c.add_tap_guest(self.cleanup, "lan", "10.77.0.3/24", mtu=1450)
        for addr in ("10.77.0.2", "10.77.0.3"):
            res = ga.ping(addr, count=2, interval=0.2)
            self.assertEqual(res.returncode, 0, f"{addr}: {res.stdout}{res.stderr}")
        # A does not relay between its remotes (no frame leaves the port it
        # came in by, as with a Linux vxlan device): B and C, which are not
        # each other's remotes, do not meet.
        self.assertNotEqual(gb.ping("10.77.0.3", count=2, interval=0.2).returncode, 0)
        # A has learned B's guest behind B: a transfer between A and B sends
        # nothing to C (which would have to drop it as a foreign MAC).
        before = c.counters("lan", pc)["rx_frames"]
        self.transfer_checked(ga, gb, "10.77.0.2")
        self.transfer_checked(gb, ga, "10.77.0.1")
        self.assertLess(c.counters("lan", pc)["rx_frames"] - before, 10,
                        "the A-B transfer was flooded to C")

    def test_multicast_group_on_loopback(self):
        # Two engines on one host (a loopback-only namespace, as multicast
        # tests must be), each with its own address on lo, join one group.
        host = Netns(self.cleanup, "vxm")
        host.run(["ip", "link", "set", "lo", "multicast", "on"])
        host.run(["ip", "route", "add", "224.0.0.0/4", "dev", "lo"])
        a, b = self.host_engine(host), self.host_engine(host)
        pa = a.add_port("lan", f"vxlan,vni={VNI},group=239.1.1.1,dev=lo,local=127.0.0.1")
        pb = b.add_port("lan", f"vxlan,vni={VNI},group=239.1.1.1,dev=lo,local=127.0.0.2")
        self.assertIn("group 239.1.1.1:4789 on lo", a.port("lan", pa)["peer"])
        ga, _ = a.add_tap_guest(self.cleanup, "lan", "10.77.0.1/24")
        gb, _ = b.add_tap_guest(self.cleanup, "lan", "10.77.0.2/24")
        res = ga.ping("10.77.0.2", count=3, interval=0.2)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        # Each learned the other from the group and answers it by unicast.
        self.assertIn("127.0.0.2:4789 joined through the group", a.log())
        self.assertIn("127.0.0.1:4789 joined through the group", b.log())
        self.transfer_checked(ga, gb, "10.77.0.2")
        # Neither took its own looped-back floods for a peer's.
        self.assertNotIn("127.0.0.1:4789 joined", a.log())
        self.assertEqual(a.counters("lan", pa)["drop_tunnel"], 0)
        self.assertEqual(b.counters("lan", pb)["drop_tunnel"], 0)

    def test_bad_specs_are_refused_with_a_reason(self):
        e = self.engine()
        e.vnet("net", "add", "lan")
        for spec, why in (("vxlan,remote=127.0.0.1", "missing option vni="),
                          ("vxlan,vni=16777216,remote=127.0.0.1", "from 0 to 16777215"),
                          ("vxlan,vni=1", "give remote="),
                          ("vxlan,vni=1,remote=239.1.1.1", "is a multicast group"),
                          ("vxlan,vni=1,group=239.1.1.1", "missing option dev="),
                          ("vxlan,vni=1,group=10.0.0.1,dev=lo", "not an IPv4 multicast group"),
                          ("vxlan,vni=1,remote=127.0.0.1,local=[::1]:4789", "different IP versions")):
            res = e.vnet("port", "add", "lan", spec, check=False)
            self.assertNotEqual(res.returncode, 0, spec)
            self.assertIn(why, res.stderr, spec)


if __name__ == "__main__":
    unittest.main()
