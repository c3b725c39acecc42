"""Each networking mode with booted guests (the guest kit under QEMU, TCG,
attached with the options `vnet attach` prints), asserting what the mode
promises and what it forbids. Guests of one test boot in parallel."""

import os
import shlex
import subprocess
import unittest

from guestkit import DHCP, GuestKit, probe
from natlib import HTTP_PORT, INET_ADDR, PY, NatTestCase, listening
from vnetlib import wait_for

WEB = f"timeout 20 wget -q -O /tmp/page http://www.test:{HTTP_PORT}/page"
WEB_BY_ADDR = f"timeout 8 wget -q -O /tmp/page http://{INET_ADDR}:{HTTP_PORT}/page"


def ping_until(addr, tries=30):
    """A ping that waits for a peer still booting."""
    return f"(i=0; until ping -c 1 -W 1 {addr}; do i=$((i+1)); [ $i -ge {tries} ] && exit 1; sleep 0.5; done)"


# A guest that is done stays up a while, so that a peer that booted later
# still finds it to ping (seen in CI: the faster guest had powered off
# before the slower one pinged it).
LINGER_FOR_PEER = "sleep 20\n"


class BootedModesTest(NatTestCase):
    def setUp(self):
        super().setUp()
        self.build_lab(http_files={"page": b"from the internet namespace\n"})
        self.kit = GuestKit(self.tmp)

    def listener(self, net):
        sock = os.path.join(self.e.run_dir, f"{net}.sock")
        port = self.e.add_port(net, f"stream,server=on,addr.type=unix,addr.path={sock}")
        wait_for(lambda: os.path.exists(sock), what="the network's guest socket")
        return port

    def attach(self, net):
        line = self.e.vnet("attach", net).strip().splitlines()[0]
        return [o.replace("virtio-net-pci,", "virtio-net-pci,romfile=,") for o in shlex.split(line)]

    def boot_all(self, net, scripts):
        guests = [self.kit.boot(self.cleanup, self.attach(net), s, name=f"guest {i}") for i, s in enumerate(scripts)]
        return [g.finish() for g in guests], guests

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


if __name__ == "__main__":
    unittest.main()
