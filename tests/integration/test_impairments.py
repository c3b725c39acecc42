"""Port impairments (rate, delay, loss, duplication, reordering), measured with
real TCP/ICMP stacks rather than assumed from the settings."""

import json
import subprocess
import unittest

from vnetlib import VnetTestCase, random_file, sha256_of, wait_for
from vnet_it import delta, guest, listening, ping, ping_stats

A, B = "10.0.0.1", "10.0.0.2"


class ImpairmentTest(VnetTestCase):
    def lab(self, a_flags=(), b_flags=()):
        e = self.engine()
        e.vnet("net", "add", "lab")
        a, pa = guest(e, self.cleanup, "lab", f"{A}/24", flags=a_flags)
        b, pb = guest(e, self.cleanup, "lab", f"{B}/24", flags=b_flags)
        return e, a, pa, b, pb

    def rtt(self, ns, count=10):
        res = ping(ns, B, count, interval=0.2, wait=2)
        tx, rx, avg = ping_stats(res)
        self.assertEqual(rx, tx, res.stdout)
        return avg

    def test_rate_limit(self):
        e, a, pa, b, pb = self.lab(a_flags=("--rate", "10mbit"))
        self.assertIn("in", e.port("lab", pa)["impairments"])
        srv = b.popen(self.cleanup, ["iperf3", "-s", "-1", "-p", "5201"], stdout=subprocess.DEVNULL)
        wait_for(lambda: listening(srv.pid, 5201), what="iperf3 listening")
        res = a.run(["iperf3", "-c", B, "-p", "5201", "-t", "5", "-J"], timeout=40)
        bps = json.loads(res.stdout)["end"]["sum_received"]["bits_per_second"]
        self.assertGreater(bps, 9e6, f"{bps / 1e6:.2f} Mbit/s")
        self.assertLess(bps, 11e6, f"{bps / 1e6:.2f} Mbit/s")
        self.assertGreater(e.counters("lab", pa)["imp_shaped"], 0)

    def test_bandwidth_group_shares_one_limit(self):
        """Two senders in one bandwidth group of 20 Mbit/s, sending at once to
        a third guest, get about 20 Mbit/s together; the group's limit changes
        for both at once; a group with ports cannot be deleted."""
        e = self.engine()
        e.vnet("net", "add", "lab")
        e.vnet("bwgroup", "add", "lab", "vms", "--rate", "20mbit")
        a, pa = guest(e, self.cleanup, "lab", "10.0.0.1/24")
        b, pb = guest(e, self.cleanup, "lab", "10.0.0.2/24", flags=("--bwgroup", "vms"))  # joins as it is added
        c, _ = guest(e, self.cleanup, "lab", "10.0.0.3/24")
        e.vnet("port", "set", "lab", str(pa), "--bwgroup", "vms")  # joins later
        self.assertEqual(e.port("lab", pa)["bwgroup"], "vms")
        groups = e.network("lab")["bwgroups"]
        self.assertEqual([(g["name"], g["rate_bps"], g["ports"]) for g in groups], [("vms", 20_000_000, [pa, pb])])
        self.assertRegex(e.vnet("bwgroup", "list", "lab"), rf"vms +20000000 bit/s +ports {pa},{pb}")
        res = e.vnet("bwgroup", "del", "lab", "vms", check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("still holds port(s)", res.stderr)

        def together():
            servers = [c.popen(self.cleanup, ["iperf3", "-s", "-1", "-p", str(port)], stdout=subprocess.DEVNULL)
                       for port in (5201, 5202)]
            for srv, port in zip(servers, (5201, 5202)):
                wait_for(lambda: listening(srv.pid, port), what="iperf3 listening")
            clients = [ns.popen(self.cleanup, ["iperf3", "-c", "10.0.0.3", "-p", str(port), "-t", "5", "-J"],
                                stdout=subprocess.PIPE, text=True) for ns, port in ((a, 5201), (b, 5202))]
            return [json.loads(cl.communicate(timeout=40)[0])["end"]["sum_received"]["bits_per_second"]
                    for cl in clients]

        rates = together()
        print(f"\n  bandwidth group of 20 Mbit/s, two senders: {rates[0] / 1e6:.2f} + {rates[1] / 1e6:.2f} Mbit/s")
        total = sum(rates)
        self.assertGreater(total, 16e6, f"{[r / 1e6 for r in rates]} Mbit/s")
        self.assertLess(total, 22e6, f"{[r / 1e6 for r in rates]} Mbit/s")
        # The group shares its rate fairly among the members that send (it
        # once served them first come, first served: 3.3 + 16.5 Mbit/s).
        self.assertGreater(min(rates), 0.35 * total, f"unfair shares: {[r / 1e6 for r in rates]} Mbit/s")
        # A new limit applies to every member.
        e.vnet("bwgroup", "add", "lab", "vms", "--rate", "8mbit")
        rates = together()
        self.assertLess(sum(rates), 9e6, f"{[r / 1e6 for r in rates]} Mbit/s")
        self.assertGreater(sum(rates), 6e6, f"{[r / 1e6 for r in rates]} Mbit/s")
        e.vnet("port", "set", "lab", str(pa), "--bwgroup", "none")
        e.vnet("port", "set", "lab", str(pb), "--bwgroup", "none")
        self.assertNotIn("bwgroup", e.port("lab", pa))
        e.vnet("bwgroup", "del", "lab", "vms")
        self.assertEqual(e.network("lab")["bwgroups"], [])

    def test_delay_set_at_runtime_and_cleared(self):
        e, a, pa, b, pb = self.lab()
        self.assertLess(self.rtt(a, 3), 10, "baseline RTT")
        e.vnet("port", "set", "lab", str(pa), "--delay", "25ms")
        imp = e.port("lab", pa)["impairments"]
        self.assertIn("in", imp)
        self.assertIn("out", imp)
        avg = self.rtt(a, 10)
        self.assertGreaterEqual(avg, 45, f"25 ms each way: avg {avg}")
        self.assertLessEqual(avg, 55, f"25 ms each way: avg {avg}")
        self.assertGreater(e.counters("lab", pa)["imp_delayed"], 0)
        # Only one direction: half the added RTT.
        e.vnet("port", "set", "lab", str(pa), "--clear")
        e.vnet("port", "set", "lab", str(pa), "--delay", "25ms", "--direction", "out")
        imp = e.port("lab", pa)["impairments"]
        self.assertEqual(list(imp), ["out"], imp)
        avg = self.rtt(a, 5)
        self.assertGreaterEqual(avg, 22, f"25 ms one way: avg {avg}")
        self.assertLessEqual(avg, 32, f"25 ms one way: avg {avg}")
        e.vnet("port", "set", "lab", str(pa), "--clear")
        self.assertEqual(e.port("lab", pa)["impairments"], {})
        self.assertLess(self.rtt(a, 5), 10, "RTT back to baseline after --clear")

    def test_loss(self):
        e, a, pa, b, pb = self.lab()
        self.assertEqual(self.rtt(a, 1) is not None, True)  # ARP resolved before the loss starts
        e.vnet("port", "set", "lab", str(pa), "--loss", "10%", "--direction", "in")
        c0 = e.counters("lab", pa)
        res = ping(a, B, 300, interval=0.01, wait=2, timeout=60)
        tx, rx, _ = ping_stats(res)
        self.assertEqual(tx, 300)
        lost = tx - rx
        self.assertGreaterEqual(lost / tx, 0.03, res.stdout[-300:])
        self.assertLessEqual(lost / tx, 0.20, res.stdout[-300:])
        c1 = e.counters("lab", pa)
        self.assertGreaterEqual(delta(c0, c1, "imp_lost"), lost)
        self.assertLessEqual(delta(c0, c1, "imp_lost"), lost + 3)  # perhaps an ARP frame too

    def test_tcp_survives_loss_reorder_delay_dup(self):
        e, a, pa, b, pb = self.lab(a_flags=("--loss", "1%", "--reorder", "1%", "--delay", "5ms"),
                                   b_flags=("--dup", "1%"))
        path = random_file(self.tmp, 4 << 20)
        self.assertEqual(self.transfer_nc(a, b, B, path, port=5003, timeout=90), sha256_of(path))
        ca, cb = e.counters("lab", pa), e.counters("lab", pb)
        for k in ("imp_lost", "imp_reordered", "imp_delayed"):
            self.assertGreater(ca[k], 0, f"{k}: {ca}")
        self.assertGreater(cb["imp_duplicated"], 0, cb)
        self.assertEqual(ca["imp_duplicated"], 0, "no duplication on A's port")
        self.assertEqual(cb["imp_lost"], 0, "no loss on B's port")


if __name__ == "__main__":
    unittest.main()
