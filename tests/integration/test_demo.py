"""`vnet demo`, as a user runs it after the README's first command: it boots
the guest kit's guest under QEMU on a running network and reports each step.
Here the engine runs in the NAT lab's host namespace (so the page the demo
serves on 127.0.0.1 is the host loopback the gateway reaches) and its DNS
upstream is the lab's dnsmasq, which knows www.test."""

import os
import subprocess
import unittest

from natlib import FIRST_LEASE, INET_ADDR, NatTestCase
from vnetlib import VNET, wait_for


class DemoTest(NatTestCase):
    def test_demo_boots_a_guest_and_every_step_passes(self):
        self.build_lab()
        self.nat_net("nat")
        sock = os.path.join(self.e.run_dir, "demo.sock")
        self.e.add_port("nat", f"stream,server=on,addr.type=unix,addr.path={sock}")
        wait_for(lambda: os.path.exists(sock), what="the network's guest socket")
        res = self.hostns.run([VNET, "--run-dir", self.e.run_dir, "demo", "--net", "nat", "--resolve", "www.test",
                               "--accel", "tcg"], check=False, timeout=240)
        out = res.stdout + res.stderr
        self.assertEqual(res.returncode, 0, out)
        lines = out.splitlines()
        self.assertTrue(any(l.startswith("vnet demo: building the guest: Debian kernel") for l in lines), out)
        self.assertTrue(any(l.startswith("vnet demo: guest booted in") for l in lines), out)
        self.assertIn(f"vnet demo: ok   got a DHCP lease: {FIRST_LEASE}/24", lines)
        self.assertIn("vnet demo: ok   pinged the gateway: 10.0.2.2 answers", lines)
        self.assertIn(f"vnet demo: ok   resolved a name through vnet's DNS: www.test is {INET_ADDR}", lines)
        self.assertIn("vnet demo: ok   fetched a page from the host's loopback through the gateway: "
                      "hello from the host, through vnet", lines)
        self.assertTrue(lines[-1].startswith("vnet demo: all 4 steps passed"), out)
        # The guest really was on the network: its MAC (from `vnet attach`) holds the lease.
        leases = self.nat_status()["leases"]
        self.assertEqual([l["ip"] for l in leases], [FIRST_LEASE])
        self.assertTrue(leases[0]["mac"].startswith("52:56:"), leases)

    def test_demo_explains_what_is_missing(self):
        """Without a running engine the demo says how to start one."""
        run_dir = os.path.join(self.tmp, "nothing")
        os.mkdir(run_dir, 0o700)
        res = subprocess.run([VNET, "--run-dir", run_dir, "demo"], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("vnet up", res.stdout + res.stderr)


if __name__ == "__main__":
    unittest.main()
