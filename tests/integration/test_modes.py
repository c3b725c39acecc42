"""Networking modes by name and attaching many guests.

- udp-tunnel (VirtualBox's UDP Tunnel) joins networks of two engines.
- `vnet attach` hands out a fresh MAC each time; two ports using one MAC are
  reported (log line, counter, status text and JSON).
"""

import os
import random
import re
import socket
import struct
import unittest

from vnetlib import VnetTestCase, wait_for


def stream_client(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def send_frame(sock, src_mac, dst=b"\xff" * 6):
    # QEMU's stream framing: a 4-byte big-endian length, then the frame.
    frame = dst + bytes.fromhex(src_mac.replace(":", "")) + b"\x08\x06" + bytes(46)
    sock.sendall(struct.pack(">I", len(frame)) + frame)


class AttachTest(VnetTestCase):
    def test_attach_lines_differ_and_up_prints_the_first(self):
        e = self.engine()
        first = re.search(r"-netdev (\S+) -device virtio-net-pci,netdev=n0,mac=(\S+)", e.up_output)
        self.assertIsNotNone(first, e.up_output)
        macs = {first.group(2)}
        for i in range(5):
            line = e.vnet("attach", "default")
            m = re.fullmatch(r"-netdev stream,id=n0,server=off,addr.type=unix,addr.path=(\S+) "
                             r"-device virtio-net-pci,netdev=n0,mac=(\S+)\n", line)
            self.assertIsNotNone(m, line)
            self.assertEqual(m.group(1), os.path.join(e.run_dir, "default.sock"))
            macs.add(m.group(2))
        self.assertEqual(len(macs), 6, macs)
        for mac in macs:
            self.assertEqual(int(mac[:2], 16) & 3, 2, f"{mac}: locally administered unicast")
        xml = e.vnet("attach", "default", "--libvirt")
        self.assertIn("<qemu:arg value='-netdev'/>", xml)
        mac = re.search(r"mac=([0-9a-f:]{17})", xml).group(1)
        self.assertNotIn(mac, macs)
        res = e.vnet("attach", "nosuch", check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("no network named 'nosuch'", res.stderr)

    def test_two_ports_with_one_mac_are_reported(self):
        e = self.engine()
        path = os.path.join(e.run_dir, "default.sock")
        a, b = stream_client(path), stream_client(path)
        self.cleanup.add(a.close)
        self.cleanup.add(b.close)
        wait_for(lambda: len(e.network("default")["ports"]) == 4, what="two accepted connections")
        mac = "52:54:00:12:34:56"  # what two guests started without mac= both use
        send_frame(a, mac)
        wait_for(lambda: any(m["mac"] == mac for m in e.network("default")["macs"]), what="MAC learned")
        self.assertEqual(e.network("default")["duplicate_macs"], [])
        send_frame(b, mac)
        wait_for(lambda: e.network("default")["duplicate_macs"], what="duplicate reported")
        net = e.network("default")
        dup = net["duplicate_macs"][0]
        self.assertEqual(dup["mac"], mac)
        accepted = sorted(p["id"] for p in net["ports"] if p.get("parent"))
        self.assertEqual(sorted(dup["ports"]), accepted)
        self.assertEqual(net["duplicate_mac_events"], 1)
        by_id = {p["id"]: p for p in net["ports"]}
        self.assertEqual(by_id[dup["ports"][1]]["counters"]["mac_duplicate"], 1)
        send_frame(a, mac)
        send_frame(b, mac)
        wait_for(lambda: e.network("default")["duplicate_mac_events"] == 3, what="each move counted")
        self.assertEqual(e.log().count(f"MAC {mac} is used by port"), 1, "one log line per duplicate")
        text = e.vnet("status")
        self.assertIn(f"WARNING: MAC {mac} used by ports", text)
        self.assertIn("dup-mac 1", text)
        # One of the two guests leaves: no longer a duplicate.
        b.close()
        wait_for(lambda: e.network("default")["duplicate_macs"] == [], what="duplicate cleared")


class UdpTunnelTest(VnetTestCase):
    def test_two_engines_joined_by_a_udp_tunnel(self):
        # Two "hosts" (engines), each with a switch network and a guest; one
        # tunnel over loopback joins the two networks into one segment.
        a, b = self.engine(), self.engine()
        pa, pb = random.sample(range(20000, 30000), 2)
        for e in (a, b):
            e.vnet("net", "add", "lan")
        ta = a.add_port("lan", f"udp-tunnel,local=127.0.0.1:{pa},remote=127.0.0.1:{pb}")
        b.add_port("lan", f"udp-tunnel,local=127.0.0.1:{pb},remote=127.0.0.1:{pa}")
        ga, _ = a.add_tap_guest(self.cleanup, "lan", "192.168.77.1/24")
        gb, _ = b.add_tap_guest(self.cleanup, "lan", "192.168.77.2/24")
        res = ga.ping("192.168.77.2", count=3, interval=0.2)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("udp-tunnel", a.port("lan", ta)["spec"])
        self.assertGreater(a.counters("lan", ta)["rx_frames"], 0)


if __name__ == "__main__":
    unittest.main()
