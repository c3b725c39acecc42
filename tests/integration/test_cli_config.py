"""`vnet up/down`, the default network, TOML configs and --help."""

import os
import socket
import tempfile
import time
import unittest

from vnetlib import VNET, Engine, Netns, VnetTestCase, run, wait_for
from vnet_it import ping, ping_ok, ping_stats, port_ids


class CliConfigTest(VnetTestCase):
    def test_default_up_second_up_and_down(self):
        e = self.engine()
        sock = os.path.join(e.run_dir, "default.sock")
        # The banner tells how to attach QEMU to the default socket.
        self.assertIn("qemu-system-x86_64", e.up_output)
        self.assertIn(f"-netdev stream,id=n0,server=off,addr.type=unix,addr.path={sock}", e.up_output)
        st = e.status()
        self.assertEqual([n["name"] for n in st["networks"]], ["default"])
        net = st["networks"][0]
        self.assertEqual(net["mode"], "nat")
        self.assertEqual(net["nat"]["gateway"], "10.0.2.2")
        gateway, listener = net["ports"]
        self.assertEqual(gateway["kind"], "nat")
        self.assertEqual(listener["kind"], "stream-listen")
        self.assertEqual(listener["peer"], f"unix:{sock}")
        # The socket takes a QEMU-style peer, which becomes a port of its own.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.cleanup.add(s.close)
        s.connect(sock)
        fixed = {gateway["id"], listener["id"]}
        child = wait_for(lambda: port_ids(e, "default") - fixed, what="accepted peer port")
        self.assertEqual(e.port("default", next(iter(child))).get("parent"), listener["id"])
        s.close()
        wait_for(lambda: port_ids(e, "default") == fixed, what="peer port removed on close")

        # A second `vnet up` on the same run dir refuses, and the first engine is untouched.
        res = run([VNET, "--run-dir", e.run_dir, "up"], check=False, timeout=30)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("already running", res.stderr)
        self.assertEqual(len(res.stderr.strip().splitlines()), 1, res.stderr)
        self.assertTrue(e.alive())
        self.assertEqual(e.status()["networks"][0]["name"], "default")

        out = e.vnet("down")
        self.assertIn("stopped", out)
        wait_for(lambda: not e.alive(), timeout=5, what="engine exit")
        self.assertFalse(os.path.exists(os.path.join(e.run_dir, "vnet.pid")))
        self.assertFalse(os.path.exists(sock), "listener socket removed on shutdown")
        res = e.vnet("status", check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("not running", res.stderr)
        # And it can come back on the same run dir.
        res = run([VNET, "--run-dir", e.run_dir, "up"], timeout=30)
        self.assertIn("vnet is up", res.stdout)
        with open(os.path.join(e.run_dir, "vnet.pid")) as f:
            e.pid = int(f.read())
        self.assertTrue(e.alive())

    def test_config_file(self):
        n1, n2 = Netns(self.cleanup), Netns(self.cleanup)
        tmp = tempfile.mkdtemp(dir=self.tmp)
        pcap = os.path.join(tmp, "hub.pcap")
        lab_sock = os.path.join(tmp, "lab.sock")
        config = f"""
log_level = "warn"

[[network]]
name = "lab"
mode = "switch"
mtu = 1500
mac_aging = "30s"
mac_limit = 8

  [[network.port]]
  spec = "tap,ifname=eth0,netns={n1.name}"
  rate = "10mbit"
  delay = "10ms"

  [[network.port]]
  spec = "tap,ifname=eth0,netns={n2.name},vlan=0"
  link = "down"

  [[network.port]]
  spec = "stream,server=on,addr.type=unix,addr.path={lab_sock}"
  delay = "25ms"
  direction = "out"

[[network]]
name = "shared"
mode = "hub"

  [[network.port]]
  spec = "pcap,file={pcap}"
"""
        e = self.engine(config=config)
        st = {n["name"]: n for n in e.status()["networks"]}
        self.assertEqual(set(st), {"lab", "shared"})
        lab, shared = st["lab"], st["shared"]
        self.assertEqual((lab["mode"], lab["mtu"], lab["mac_aging_s"], lab["mac_limit"]), ("switch", 1500, 30.0, 8))
        self.assertEqual(shared["mode"], "hub")
        p1, p2, p3 = lab["ports"]
        self.assertEqual([p["kind"] for p in lab["ports"]], ["tap", "tap", "stream-listen"])
        self.assertEqual(set(p1["impairments"]), {"in", "out"})
        self.assertIn("rate 10000000", p1["impairments"]["in"])
        self.assertIn("delay 10", p1["impairments"]["out"])
        self.assertEqual(p1["link"], "up")
        self.assertEqual(p2["link"], "down")
        self.assertEqual(list(p3["impairments"]), ["out"])
        self.assertIn("delay 25", p3["impairments"]["out"])
        self.assertEqual(p3["peer"], f"unix:{lab_sock}")
        self.assertEqual([p["kind"] for p in shared["ports"]], ["pcap"])
        self.assertTrue(os.path.exists(pcap))

        # The config is behaviour, not just status: the down link carries nothing...
        n1.configure("eth0", "10.0.0.1/24")
        n2.configure("eth0", "10.0.0.2/24")
        self.assertFalse(ping_ok(n1, "10.0.0.2", 2, wait=1))
        # ...until it is brought up, and the 10 ms each way show in the RTT.
        e.vnet("port", "set", "lab", str(p2["id"]), "--link", "up")
        # ARP first, itself delayed, after the failed resolution while the
        # link was down: retried (one ping once timed out on a loaded CI machine).
        wait_for(lambda: ping_ok(n1, "10.0.0.2", 1), timeout=15, interval=0.5, what="a ping over the link brought up")
        res = ping(n1, "10.0.0.2", 5, interval=0.2)
        tx, rx, avg = ping_stats(res)
        self.assertEqual((tx, rx), (5, 5), res.stdout)
        self.assertGreaterEqual(avg, 18, res.stdout)
        self.assertLessEqual(avg, 30, res.stdout)
        self.assertNotIn("network lab added", e.log(), "log_level = warn keeps info lines out")

    def _up_fails(self, text):
        run_dir = tempfile.mkdtemp(prefix="vnet-test-", dir=self.tmp)
        path = os.path.join(run_dir, "bad.toml")
        with open(path, "w") as f:
            f.write(text)
        res = run([VNET, "--run-dir", run_dir, "up", "--config", path], check=False, timeout=30)
        self.assertNotEqual(res.returncode, 0)
        self.assertFalse(os.path.exists(os.path.join(run_dir, "vnet.pid")), "no engine left running")
        err = res.stderr.strip()
        self.assertEqual(len(err.splitlines()), 1, err)
        return path, err

    def test_config_errors_name_file_and_line(self):
        path, err = self._up_fails('[[network]]\nname = "lab"\n\ncolour = "red"\n')
        self.assertIn(f"{path}:4", err)
        self.assertIn("colour", err)
        path, err = self._up_fails('[[network]]\nname = "lab"\n  [[network.port]]\n  spec = "pcap,file=/dev/null"\n'
                                   '  delya = "5ms"\n')
        self.assertIn(f"{path}:5", err)
        self.assertIn("delya", err)
        path, err = self._up_fails('[[network]]\nname = "lab"\nmtu = "big"\n')
        self.assertIn(f"{path}:3", err)
        path, err = self._up_fails('[[network]\nname = "lab"\n')
        self.assertIn(f"{path}:1", err)
        # A config that parses but cannot be applied: the port's problem is named.
        path, err = self._up_fails('[[network]]\nname = "lab"\n  [[network.port]]\n  spec = "bogus"\n')
        self.assertIn("bogus", err)

    def test_config_errors_in_the_files_terms(self):
        # One case per kind of mistake: the whole message is file:line: key = value: problem.
        cases = [
            ("unknown key", '[[network]]\nname = "lab"\nmdoe = "hub"\n',
             '{p}:3: mdoe = "hub": unknown key in a [[network]] table (did you mean mode?)'),
            ("wrong type", '[[network]]\nname = "lab"\nmtu = "big"\n',
             '{p}:3: mtu = "big": expected a non-negative integer (no quotes)'),
            ("bad value", 'log_level = "info"\n[[network]]\nname = "lab"\nmode = "swich"\n',
             '{p}:4: mode = "swich": expected "switch", "hub", "nat", "internal", "hostonly", "bridged" or "kernel-nat"'),
            ("bad port spec", '[[network]]\nname = "lab"\n  [[network.port]]\n  spec = "stream,server=on,addr.typ=unix"\n',
             '{p}:4: spec = "stream,server=on,addr.typ=unix": unknown option \'addr.typ\' for stream'),
            ("duplicate network", '[[network]]\nname = "lab"\n\n[[network]]\nname = "lab"\nmode = "hub"\n',
             '{p}:5: name = "lab": network "lab" is already declared at line 2'),
        ]
        for kind, text, expected in cases:
            with self.subTest(kind=kind):
                path, err = self._up_fails(text)
                self.assertTrue(err.startswith("vnet: " + expected.format(p=path)), err)

    def test_help(self):
        for args in ([], ["up"], ["down"], ["status"], ["net"], ["net", "add"], ["net", "del"], ["net", "list"],
                     ["port"], ["port", "add"], ["port", "del"], ["port", "set"], ["capture"], ["attach"]):
            with self.subTest(args=args):
                res = run([VNET] + args + ["--help"], check=False, timeout=10)
                self.assertEqual(res.returncode, 0, res.stderr)
                self.assertIn("Usage", res.stdout)
        res = run([VNET, "port", "add", "--help"], timeout=10)
        for flag in ("--rate", "--delay", "--loss", "--dup", "--reorder", "--link", "--direction"):
            self.assertIn(flag, res.stdout)
        res = run([VNET, "frobnicate"], check=False, timeout=10)
        self.assertNotEqual(res.returncode, 0)

    def test_typo_names_the_word_and_the_nearest_command(self):
        # Before: "A subcommand is required", which names neither.
        for args, word, nearest in ((["statsu"], "statsu", "status"), (["--run-dir", "/nonexistent", "dwon"], "dwon", "down"),
                                    (["net", "ad", "x"], "ad", "add"), (["pf", "lst", "x"], "lst", "list")):
            with self.subTest(args=args):
                res = run([VNET] + args, check=False, timeout=10)
                self.assertEqual(res.returncode, 1, res.stderr)
                self.assertIn(f"unknown command '{word}' (did you mean '{nearest}'?)", res.stderr)
        res = run([VNET, "zzzzzzzz"], check=False, timeout=10)
        self.assertIn("unknown command 'zzzzzzzz'", res.stderr)
        self.assertNotIn("did you mean", res.stderr, "no suggestion for a word far from every command")


if __name__ == "__main__":
    unittest.main()
