"""Each networking mode with booted guests (the guest kit under QEMU, TCG,
attached with the options `vnet attach` prints), asserting what the mode
promises and what it forbids. Guests of one test boot in parallel."""

import json
import os
import shlex
import subprocess
import unittest

from guestkit import DHCP, GuestKit, probe
from natlib import HTTP_PORT, INET_ADDR, LAN_LEASES, PY, NatTestCase, listening
from vnetlib import wait_for

WEB = f"timeout 20 wget -q -O /tmp/page http://www.test:{HTTP_PORT}/page"
WEB_BY_ADDR = f"timeout 8 wget -q -O /tmp/page http://{INET_ADDR}:{HTTP_PORT}/page"


def ping_until(addr, tries=30):
    """A ping that waits for a peer still booting."""
    return f"(i=0; until ping -c 1 -W 1 {addr}; do i=$((i+1)); [ $i -ge {tries} ] && exit 1; sleep 0.5; done)"


def the_other_of(first, second):
    """Shell that sets $peer to whichever of two addresses eth0 was not given."""
    return (f"peer={first}; ip -4 -o addr show dev eth0 | grep -q 'inet {first}/' && peer={second}\n")


# A guest that is done stays up a while, so that a peer that booted later
# still finds it to ping (seen in CI: the faster guest had powered off
# before the slower one pinged it).
LINGER_FOR_PEER = "sleep 20\n"


class BootedLab(NatTestCase):
    """The NAT lab with the guest kit: guests join through a network's
    unix stream listener with the options `vnet attach` prints."""

    def setUp(self):
        super().setUp()
        self.build_lab(http_files={"page": b"from the internet namespace\n"}, engine_extra=("--allow-if", "lan-up"))
        self.kit = GuestKit(self.tmp)

    def listener(self, net):
        sock = os.path.join(self.e.run_dir, f"{net}.sock")
        port = self.e.add_port(net, f"stream,server=on,addr.type=unix,addr.path={sock}")
        wait_for(lambda: os.path.exists(sock), what="the network's guest socket")
        return port

    def attach(self, net):
        line = self.e.vnet("attach", net).strip().splitlines()[0]
        return [o.replace("virtio-net-pci,", "virtio-net-pci,romfile=,") for o in shlex.split(line)]

    def boot_all(self, net, scripts, box=None):
        guests = [self.kit.boot(self.cleanup, self.attach(net), s, name=f"guest {i}", box=box)
                  for i, s in enumerate(scripts)]
        return [g.finish() for g in guests], guests


class BootedModesTest(BootedLab):
    def test_nat_network_guests_from_two_attach_lines(self):
        """Two guests from two `vnet attach` lines get distinct leases, see
        each other and reach the internet namespace by name."""
        self.nat_net("nat")
        self.listener("nat")
        script = (DHCP + probe("PEER", ping_until("10.0.2.15") + " && " + ping_until("10.0.2.16")) + probe("WEB", WEB)
                  + LINGER_FOR_PEER)
        results, guests = self.boot_all("nat", [script, script])
        addrs = sorted(r.get("VNET-ADDR", "") for r in results)
        self.assertEqual(addrs, ["10.0.2.15", "10.0.2.16"], [g.console() for g in guests])
        for r, g in zip(results, guests):
            self.assertEqual((r.get("VNET-PEER"), r.get("VNET-WEB")), ("ok", "ok"), g.console())
        leases = self.nat_status()["leases"]
        self.assertEqual(len({l["mac"] for l in leases}), 2, leases)

    def test_internal_network_guests_see_only_each_other(self):
        self.e.vnet("net", "add", "int", "--mode", "internal", "--dhcp", "on", "--net", "10.9.0.0/24")
        self.listener("int")
        script = (DHCP + probe("PEER", ping_until("10.9.0.15") + " && " + ping_until("10.9.0.16"))
                  + "ip route add default via 10.9.0.2\n"
                  + probe("OUTSIDE", WEB_BY_ADDR) + probe("HOST", "timeout 8 wget -q -O /tmp/h http://10.9.0.2:22/")
                  + LINGER_FOR_PEER)
        results, guests = self.boot_all("int", [script, script])
        for r, g in zip(results, guests):
            self.assertIn(r.get("VNET-ADDR"), ("10.9.0.15", "10.9.0.16"), g.console())
            self.assertEqual(r.get("VNET-PEER"), "ok", g.console())
            self.assertEqual((r.get("VNET-OUTSIDE"), r.get("VNET-HOST")), ("fail", "fail"), g.console())
        self.assertGreater(self.nat_counters("int")["drop_restricted"], 0)

    def test_hostonly_guest_reaches_the_host_but_not_beyond(self):
        www = os.path.join(self.tmp, "hostwww")
        os.makedirs(www)
        with open(os.path.join(www, "page"), "w") as f:
            f.write("from the host\n")
        srv = self.hostns.popen(self.cleanup, [PY, "-m", "http.server", "--bind", "127.0.0.1", "8081",
                                               "--directory", www],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(srv.pid, 8081), what="the host's loopback web server")
        self.e.vnet("net", "add", "ho", "--mode", "hostonly", "--net", "192.168.56.0/24")
        self.listener("ho")
        script = (DHCP + probe("HOST", "timeout 20 wget -q -O /tmp/h http://192.168.56.2:8081/page")
                  + "ip route add default via 192.168.56.2\n" + probe("OUTSIDE", WEB_BY_ADDR))
        (r,), (g,) = self.boot_all("ho", [script])
        self.assertEqual(r.get("VNET-ADDR"), "192.168.56.15", g.console())
        self.assertEqual((r.get("VNET-HOST"), r.get("VNET-OUTSIDE")), ("ok", "fail"), g.console())

    def test_kernel_nat_guests_on_attach_taps_reach_the_outside_through_the_kernel(self):
        """Two guests on the TAPs `vnet attach` makes in the kernel-nat bridge
        (QEMU in the host namespace, where the TAPs are) get vnet's leases
        and fetch a page by name through the kernel's NAT; the TAPs and the
        bridge go with the network."""
        self.e.vnet("net", "add", "kn", "--mode", "kernel-nat", "--dns-upstream", INET_ADDR)
        script = (DHCP + "echo VNET-ROUTER $(ip route | sed -n 's/^default via \\([^ ]*\\).*/\\1/p')\n"
                  + probe("PEER", ping_until("10.0.2.15") + " && " + ping_until("10.0.2.16")) + probe("WEB", WEB)
                  + LINGER_FOR_PEER)
        results, guests = self.boot_all("kn", [script, script], box=self.hostns)
        self.assertEqual(sorted(r.get("VNET-ADDR", "") for r in results), ["10.0.2.15", "10.0.2.16"],
                         [g.console() for g in guests])
        for r, g in zip(results, guests):
            self.assertEqual((r.get("VNET-ROUTER"), r.get("VNET-PEER"), r.get("VNET-WEB")), ("10.0.2.1", "ok", "ok"),
                             g.console())
        # The guests' frames went into the kernel's TAPs (lease, pings, DNS, the page).
        from_guests = sum(l["stats64"]["rx"]["bytes"] for l in json.loads(
            self.hostns.run(["ip", "-j", "-s", "link", "show", "master", "vn-kn"]).stdout)
                        if l["ifname"] in ("vn-kn-0", "vn-kn-1"))
        self.assertGreater(from_guests, 2000)
        for g in guests:
            g.qemu.kill()
            g.qemu.wait()
        self.e.vnet("net", "del", "kn")
        names = [l["ifname"] for l in json.loads(self.hostns.run(["ip", "-j", "link", "show"]).stdout)]
        self.assertFalse([n for n in names if n.startswith("vn-")], names)

    def test_bridged_guest_is_leased_by_the_lan_not_by_vnet(self):
        """A booted guest on a bridged network takes its address from the
        LAN's dnsmasq and reaches the LAN's host; vnet serves no DHCP there."""
        lan = self.dhcp_lan()
        self.e.vnet("net", "add", "br", "--mode", "bridged", "--uplink", "lan-up")
        self.listener("br")
        www = os.path.join(self.tmp, "lanwww")
        os.makedirs(www)
        with open(os.path.join(www, "page"), "w") as f:
            f.write("from the LAN\n")
        srv = lan.popen(self.cleanup, [PY, "-m", "http.server", "--bind", "192.168.80.1", "8082", "--directory", www],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(srv.pid, 8082), what="the LAN's web server")
        script = DHCP + probe("LAN", "timeout 20 wget -q -O /tmp/p http://192.168.80.1:8082/page")
        (r,), (g,) = self.boot_all("br", [script])
        self.assertTrue(r.get("VNET-ADDR", "").startswith("192.168.80."), g.console())
        self.assertEqual(r.get("VNET-LAN"), "ok", g.console())
        with open(os.path.join(self.tmp, LAN_LEASES)) as f:
            self.assertIn(r["VNET-ADDR"], f.read())
        self.assertIsNone(self.e.network("br").get("nat"))

    def test_hub_repeats_guests_unicast_to_every_port(self):
        """On a hub, one guest's pings to another also reach a third port
        (a namespace guest); the same pings on a switch would not."""
        self.e.vnet("net", "add", "hub", "--mode", "hub", "--dhcp", "on", "--net", "10.8.0.0/24")
        self.listener("hub")
        _, observer = self.e.add_tap_guest(self.cleanup, "hub", None)
        pings = 30
        # Which guest is leased .15 depends on whose DHCP finishes first
        # (seen in CI: the pinger was .16 and pinged itself), so each pings
        # the address it was not given.
        peer = the_other_of("10.8.0.15", "10.8.0.16")
        a = DHCP + peer + probe("PINGS", ping_until("$peer") + f" && ping -c {pings} -i 0.2 $peer") + LINGER_FOR_PEER
        b = DHCP + peer + probe("PEER", ping_until("$peer")) + "sleep 12\n" + LINGER_FOR_PEER
        before = self.e.counters("hub", observer)["tx_frames"]
        guests = [self.kit.boot(self.cleanup, self.attach("hub"), s, name=f"guest {i}") for i, s in enumerate((a, b))]
        results = [g.finish() for g in guests]
        self.assertEqual(sorted(r.get("VNET-ADDR", "") for r in results), ["10.8.0.15", "10.8.0.16"],
                         [g.console() for g in guests])
        self.assertEqual(results[0].get("VNET-PINGS"), "ok", guests[0].console())
        # Each echo request and reply between the two guests came out at the observer too.
        self.assertGreaterEqual(self.e.counters("hub", observer)["tx_frames"] - before, 2 * pings)

    def test_udp_tunnel_joins_two_networks_into_one_segment(self):
        """VirtualBox's UDP tunnel: two networks joined by `udp-tunnel` ports
        are one segment; the guest on the far one is leased by the DHCP
        server of the near one and the two guests ping each other."""
        self.e.vnet("net", "add", "t1", "--dhcp", "on", "--net", "10.7.0.0/24")
        self.e.vnet("net", "add", "t2")
        self.e.add_port("t1", "udp-tunnel,local=127.0.0.1:5611,remote=127.0.0.1:5612")
        self.e.add_port("t2", "udp-tunnel,local=127.0.0.1:5612,remote=127.0.0.1:5611")
        self.listener("t1")
        self.listener("t2")
        script = DHCP + probe("PEER", ping_until("10.7.0.15") + " && " + ping_until("10.7.0.16")) + LINGER_FOR_PEER
        guests = [self.kit.boot(self.cleanup, self.attach(net), script, name=net) for net in ("t1", "t2")]
        results = [g.finish() for g in guests]
        self.assertEqual(sorted(r.get("VNET-ADDR", "") for r in results), ["10.7.0.15", "10.7.0.16"],
                         [g.console() for g in guests])
        for r, g in zip(results, guests):
            self.assertEqual(r.get("VNET-PEER"), "ok", g.console())


if __name__ == "__main__":
    unittest.main()
