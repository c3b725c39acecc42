"""Networking modes by name and attaching many guests.

- internal (guests see each other only, DHCP on request) and hostonly
  (guests and the host's loopback services, nothing beyond, DHCP on).

- udp-tunnel (VirtualBox's UDP Tunnel) joins networks of two engines.
- `vnet attach` hands out a fresh MAC each time; two ports using one MAC are
  reported (log line, counter, status text and JSON).
"""

import os
import random
import re
import socket
import struct
import subprocess
import unittest

from natlib import ECHO_PORT, INET_ADDR, PY, NatTestCase, connect_result_py, enable_ipv6, listening
from vnetlib import VnetTestCase, wait_for

# A TCP echo server: python3 -c ECHO_SERVER_PY ADDR PORT
ECHO_SERVER_PY = r"""
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
def serve(c):
    while True:
        d = c.recv(4096)
        if not d:
            break
        c.sendall(d)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def stream_client(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def send_frame(sock, src_mac, dst=b"\xff" * 6):
    # QEMU's stream framing: a 4-byte big-endian length, then the frame.
    frame = dst + bytes.fromhex(src_mac.replace(":", "")) + b"\x08\x06" + bytes(46)
    sock.sendall(struct.pack(">I", len(frame)) + frame)


def prefix_ipv6(guest, prefix="fec0:"):
    """The guest's address on eth0 inside the network's prefix (fec0::/64 is
    site-scoped to the kernel), or None."""
    out = guest.run(["ip", "-6", "-o", "addr", "show", "dev", "eth0"]).stdout
    m = re.search(rf"inet6 ({prefix}[0-9a-f:]*)/", out)
    return m.group(1) if m else None


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


class ModesByNameTest(NatTestCase):
    """internal and hostonly networks (VirtualBox's names) with namespace
    guests leased by busybox udhcpc, in the NAT lab whose "internet"
    namespace has servers the guests must not reach."""

    def counters(self, net):
        return self.nat_status(net)["counters"]

    def reaches(self, guest, addr, port):
        return guest.py(connect_result_py(), addr, str(port), 2).stdout.split()[0]

    def test_internal_network_guests_see_each_other_only(self):
        self.build_lab()
        self.e.vnet("net", "add", "intnet", "--mode", "internal", "--dhcp", "on", "--net", "10.9.0.0/24")
        a, b = self.guest("intnet"), self.guest("intnet")
        self.assertEqual((a.ip, b.ip), ("10.9.0.15", "10.9.0.16"))
        self.assertEqual((a.lease["router"], a.lease["dns"]), ("", ""), "no router, no DNS offered")
        self.assertEqual(a.ns.ping(b.ip, count=2, timeout=10).returncode, 0)
        self.assertEqual(a.ns.ping("10.9.0.2", count=1, timeout=10).returncode, 0, "the DHCP server answers pings")
        # Even with a route set by hand, nothing leaves: not the internet, not the host.
        a.run(["ip", "route", "add", "default", "via", "10.9.0.2"])
        c0 = self.counters("intnet")
        self.assertNotEqual(self.reaches(a, INET_ADDR, ECHO_PORT), "connected")
        self.assertNotEqual(self.reaches(a, "10.9.0.2", 22), "connected")
        self.assertGreater(self.counters("intnet")["drop_restricted"], c0["drop_restricted"])
        self.assertEqual(self.e.network("intnet")["mode"], "internal")
        res = self.e.vnet("pf", "add", "intnet", "tcp::2200-:22", check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("no port forwards", res.stderr)

    def test_internal_network_with_router_advertisements(self):
        """--ra on: the kernel's SLAAC gives each guest an address of the
        prefix, the RA offers no default route and no DNS, and the guests
        reach each other over IPv6."""
        self.build_lab()
        self.e.vnet("net", "add", "int6", "--mode", "internal", "--ra", "on")
        guests = []
        for _ in range(2):
            g = self.guest("int6", dhcp=False)
            g.run(["sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_dad=0"])
            for key in ("all", "default", "eth0"):
                g.run(["sysctl", "-q", "-w", f"net.ipv6.conf.{key}.accept_ra=2"])
            enable_ipv6(g.ns, "eth0")
            guests.append(g)
        addrs = [wait_for(lambda g=g: prefix_ipv6(g), timeout=10, what="a SLAAC address") for g in guests]
        for a in addrs:
            self.assertTrue(a.startswith("fec0::"), a)
        self.assertEqual(guests[0].run(["ip", "-6", "route", "show", "default"]).stdout.strip(), "",
                         "an RA with router lifetime 0 sets no default route")
        res = guests[0].run(["busybox", "ping", "-6", "-c", "2", "-W", "2", addrs[1]], check=False, timeout=20)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        nat = self.e.network("int6")["nat"]
        self.assertEqual((nat["ra"], nat["dhcp6"], nat["dhcp"]), (True, True, False))
        self.assertGreater(nat["counters"]["ndp_ra_sent"], 0)

    def test_hostonly_network_reaches_the_host_and_nothing_beyond(self):
        self.build_lab()
        # A service on the host's loopback (the engine's namespace stands for the host).
        srv = self.hostns.popen(self.cleanup, [PY, "-c", ECHO_SERVER_PY, "127.0.0.1", "7007"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(srv.pid, 7007), what="host loopback echo server")
        self.e.vnet("net", "add", "ho", "--mode", "hostonly", "--net", "192.168.56.0/24")
        g, h = self.guest("ho"), self.guest("ho")
        self.assertEqual(g.ip, "192.168.56.15")
        self.assertEqual(g.lease["router"], "", "no default route offered")
        self.assertEqual(g.ns.ping(h.ip, count=1, timeout=10).returncode, 0)
        self.assertEqual(self.reaches(g, "192.168.56.2", 7007), "connected", "the host's loopback service")
        g.run(["ip", "route", "add", "default", "via", "192.168.56.2"])
        c0 = self.counters("ho")
        self.assertNotEqual(self.reaches(g, INET_ADDR, ECHO_PORT), "connected")
        self.assertGreater(self.counters("ho")["drop_restricted"], c0["drop_restricted"])
        # The host reaches a guest through a port forward, as on VirtualBox's host-only adapter.
        gsrv = g.popen(self.cleanup, [PY, "-c", ECHO_SERVER_PY, "0.0.0.0", "8022"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(gsrv.pid, 8022), what="guest echo server")
        self.e.vnet("pf", "add", "ho", "tcp:127.0.0.1:2230-:8022")
        out = self.hostns.run([PY, "-c", "import socket; s = socket.create_connection(('127.0.0.1', 2230), 5); "
                               "s.sendall(b'ping'); print(s.recv(4).decode())"], timeout=20).stdout
        self.assertEqual(out.strip(), "ping")
