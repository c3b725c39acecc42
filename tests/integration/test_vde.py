"""VDE: vnet as a VDE switch for stock QEMU and vde2's plugs, and vnet as a
plug in a real vde_switch.

- QEMU's `-netdev vde,sock=DIR` (no guest OS: QEMU's hub joins its own
  user-mode stack to the VDE netdev) attaches to a vnet `vde,dir=DIR` port;
  a namespace guest on a TAP gets its DHCP lease from QEMU through vnet.
- vde_plug2tap in a namespace attaches to the same kind of port and
  exchanges pings and a file (sha256 equal) with a TAP guest.
- vnet as a client (`vde,connect=DIR`) of a vde_switch reaches a
  vde_plug2tap namespace on that switch.
- Hostile handshakes are refused and counted, and the switch keeps serving.

Network safety: QEMU runs in a namespace with loopback only; every other
address lives in test namespaces.
"""

import os
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
import time
import unittest

from vnetlib import Netns, VnetTestCase, have, random_file, run, wait_for

QEMU = "qemu-system-x86_64"
NET = "v"
LEASE_IP = "10.0.2.15"
GATEWAY = "10.0.2.2"
SLIRP_MAC = "52:55:0a:00:02:02"

DHCP_SCRIPT = """#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    echo "$ip $router" > "$LEASE_FILE" ;;
esac
exit 0
"""


class VdeTest(VnetTestCase):
    def setUp(self):
        super().setUp()
        for cmd in ("vde_switch", "vde_plug2tap", QEMU, "busybox", "nc"):
            if not have(cmd):
                self.skipTest(f"{cmd} not installed")

    # ---- helpers ------------------------------------------------------------

    def switch_engine(self):
        engine = self.engine()
        engine.vnet("net", "add", NET)
        return engine

    def switch_dir(self, engine):
        """Where the engine, which runs as its own unprivileged user, may
        create its VDE directory: a parent that user owns."""
        parent = tempfile.mkdtemp(prefix="vnet-vde-")
        self.cleanup.add(lambda: shutil.rmtree(parent, ignore_errors=True))
        uid = engine.status()["engine"]["uid"]
        os.chown(parent, uid, -1)
        return os.path.join(parent, "switch")

    def plugs(self, engine, parent):
        return [p for p in engine.network(NET)["ports"] if p.get("parent") == parent]

    def mac_port(self, engine, mac):
        return next((m["port"] for m in engine.network(NET)["macs"] if m["mac"] == mac), None)

    def plug2tap(self, ns, switch_dir, ifname="vde0"):
        """vde_plug2tap inside ns, its TAP named ifname; waits for the TAP."""
        proc = ns.popen(self.cleanup, ["vde_plug2tap", "-s", switch_dir, ifname],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        wait_for(lambda: ns.run(["ip", "link", "show", ifname], check=False).returncode == 0 or proc.poll() is not None,
                 timeout=10, what="vde_plug2tap's TAP")
        if proc.poll() is not None:
            self.fail(f"vde_plug2tap exited: {proc.stderr.read().decode(errors='replace')}")
        return proc

    def dhcp(self, guest):
        script = os.path.join(self.tmp, "udhcpc.sh")
        with open(script, "w") as f:
            f.write(DHCP_SCRIPT)
        os.chmod(script, 0o755)
        lease = os.path.join(self.tmp, "lease")
        res = guest.run(["env", f"LEASE_FILE={lease}", "busybox", "udhcpc", "-i", "eth0", "-n", "-q",
                         "-t", "5", "-T", "1", "-s", script], check=False, timeout=30)
        self.assertTrue(os.path.exists(lease), f"no DHCP lease (rc {res.returncode}):\n{res.stdout}\n{res.stderr}")
        with open(lease) as f:
            return tuple(f.read().split()[:2])

    # ---- vnet is the switch ---------------------------------------------------

    def test_qemu_netdev_vde_reaches_namespace_guest(self):
        engine = self.switch_engine()
        guest, tap = engine.add_tap_guest(self.cleanup, NET, None)
        vde_dir = self.switch_dir(engine)
        sw = engine.add_port(NET, f"vde,dir={vde_dir}")
        st = os.lstat(vde_dir)
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700, "the switch directory is the owner's only")
        self.assertEqual(stat.S_IMODE(os.lstat(os.path.join(vde_dir, "ctl")).st_mode), 0o600)
        port = engine.port(NET, sw)
        self.assertEqual((port["kind"], port["state"], port["peer"]), ("vde-switch", "listening", vde_dir))

        qns = Netns(self.cleanup, prefix="vdq")
        links = qns.run(["ip", "-o", "link", "show"]).stdout.strip().splitlines()
        self.assertEqual(len(links), 1, f"QEMU's namespace must have loopback only: {links}")
        log = os.path.join(self.tmp, "qemu.stderr")
        with open(log, "w") as err:
            qemu = qns.popen(self.cleanup, [QEMU, "-nodefaults", "-display", "none", "-M", "none",
                                            "-netdev", "user,id=u", "-netdev", f"vde,id=s,sock={vde_dir}",
                                            "-netdev", "hubport,id=h1,hubid=0,netdev=u",
                                            "-netdev", "hubport,id=h2,hubid=0,netdev=s"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        plug = wait_for(lambda: self.plugs(engine, sw) or qemu.poll() is not None, timeout=15,
                        what="QEMU's VDE plug")
        self.assertIsNone(qemu.poll(), f"QEMU exited: {open(log).read()}")
        plug = plug[0]
        self.assertEqual(plug["kind"], "vde")
        self.assertIn(f"pid {qemu.pid}", plug["peer"])
        data_sock = os.path.join(vde_dir, f"{plug['id']:03d}")
        # 0600 as made; libvdeplug then sets its own mode (QEMU as root plugging
        # into a switch of another user widens it to the group): never to others.
        self.assertEqual(stat.S_IMODE(os.lstat(data_sock).st_mode) & 0o007, 0)

        self.assertEqual(self.dhcp(guest), (LEASE_IP, GATEWAY), "lease from QEMU's stack through vnet")
        before = engine.counters(NET, plug["id"])
        res = guest.ping(GATEWAY, count=2, timeout=20)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        after = engine.counters(NET, plug["id"])
        self.assertGreaterEqual(after["rx_frames"] - before["rx_frames"], 2)
        self.assertGreaterEqual(after["tx_frames"] - before["tx_frames"], 2)
        self.assertEqual(self.mac_port(engine, SLIRP_MAC), plug["id"], "QEMU's MAC learned on its VDE port")

        qemu.kill()
        qemu.wait(timeout=10)
        wait_for(lambda: not self.plugs(engine, sw), timeout=10, what="QEMU's port to go with QEMU")
        self.assertFalse(os.path.exists(data_sock), "the plug's data socket is removed with it")
        engine.vnet("port", "del", NET, str(sw))
        self.assertFalse(os.path.exists(vde_dir), "the directory vnet made goes with the port")

    def test_vde_plug2tap_exchanges_file_with_tap_guest(self):
        engine = self.switch_engine()
        a, _ = engine.add_tap_guest(self.cleanup, NET, "10.77.0.1/24")
        vde_dir = self.switch_dir(engine)
        sw = engine.add_port(NET, f"vde,dir={vde_dir}")
        b = Netns(self.cleanup, prefix="vdb")
        self.plug2tap(b, vde_dir)
        b.configure("vde0", "10.77.0.2/24")
        plug = wait_for(lambda: self.plugs(engine, sw), what="vde_plug2tap's port")[0]
        self.assertEqual(plug["kind"], "vde")

        res = a.ping("10.77.0.2", count=3, interval=0.2)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        path = random_file(self.tmp, 2 << 20)
        want = run(["sha256sum", path]).stdout.split()[0]
        self.assertEqual(self.transfer_nc(a, b, "10.77.0.2", path), want, "A -> B through the VDE port")
        self.assertEqual(self.transfer_nc(b, a, "10.77.0.1", path, port=5202), want, "B -> A")
        c = engine.counters(NET, plug["id"])
        self.assertGreater(c["rx_bytes"], 2 << 20)
        self.assertGreater(c["tx_bytes"], 2 << 20)
        mac_b = b.run(["cat", "/sys/class/net/vde0/address"]).stdout.strip()
        self.assertEqual(self.mac_port(engine, mac_b), plug["id"])

    def test_hostile_handshakes_are_refused_and_counted(self):
        engine = self.switch_engine()
        a, _ = engine.add_tap_guest(self.cleanup, NET, "10.77.0.1/24")
        vde_dir = self.switch_dir(engine)
        sw = engine.add_port(NET, f"vde,dir={vde_dir}")
        ctl = os.path.join(vde_dir, "ctl")
        victim = os.path.join(self.tmp, "victim.sock")
        victim_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        victim_sock.bind(victim)
        os.symlink(victim, os.path.join(self.tmp, "link.sock"))

        def request(magic=0xfeedface, version=3, kind=0, path=b"/nonexistent", family=1, extra=b""):
            sun = struct.pack("<H", family) + path.ljust(108, b"\0")[:108]
            return struct.pack("<III", magic, version, kind) + sun + extra

        cases = {
            "truncated": request()[:60],
            "bad magic": request(magic=0xdeadbeef),
            "version 2": request(version=2),
            "bad type": request(kind=7),
            "inet family": request(family=2),
            "relative path": request(path=b"relative.sock"),
            "unterminated path": request(path=b"/" * 108),
            "too long": request(extra=b"d" * 200),
            "missing socket": request(path=b"/nonexistent/plug"),
            "symlinked socket": request(path=os.path.join(self.tmp, "link.sock").encode()),
        }
        for name, message in cases.items():
            with self.subTest(case=name):
                before = engine.counters(NET, sw)["drop_malformed"]
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(10)
                s.connect(ctl)
                s.sendall(message)
                if name == "truncated":
                    s.shutdown(socket.SHUT_WR)  # the rest never comes
                    self.assertEqual(s.recv(200), b"", "closed without a reply")
                    s.close()
                    continue
                try:
                    reply = s.recv(200)
                except ConnectionResetError:  # closed with our surplus unread
                    reply = b""
                self.assertEqual(reply, b"", "closed without a reply")
                s.close()
                wait_for(lambda: engine.counters(NET, sw)["drop_malformed"] == before + 1,
                         what=f"{name} counted")
                self.assertEqual(self.plugs(engine, sw), [])
        victim_sock.setblocking(False)
        with self.assertRaises(BlockingIOError):
            victim_sock.recv(100)  # nothing was ever sent to the victim
        # A silent client is dropped after the handshake timeout; meanwhile a
        # real plug is served.
        silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        silent.connect(ctl)
        b = Netns(self.cleanup, prefix="vdb")
        self.plug2tap(b, vde_dir)
        b.configure("vde0", "10.77.0.2/24")
        res = a.ping("10.77.0.2", count=2, interval=0.2)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        silent.settimeout(10)
        self.assertEqual(silent.recv(10), b"", "a silent client is dropped after 5 s")
        self.assertTrue(engine.alive())

    # ---- vnet is a plug ----------------------------------------------------------

    def test_vnet_plugs_into_vde_switch(self):
        # A switch other users may plug into (the engine runs as its own
        # unprivileged user), as vde_switch offers with -mod.
        parent = tempfile.mkdtemp(prefix="vnet-vde-")
        self.cleanup.add(lambda: shutil.rmtree(parent, ignore_errors=True))
        os.chmod(parent, 0o755)
        sw_dir = os.path.join(parent, "vde_switch")
        switch = subprocess.Popen(["vde_switch", "-s", sw_dir, "-mod", "777"], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.cleanup.process(switch)
        wait_for(lambda: os.path.exists(os.path.join(sw_dir, "ctl")), what="vde_switch's control socket")
        b = Netns(self.cleanup, prefix="vdb")
        self.plug2tap(b, sw_dir)
        b.configure("vde0", "10.78.0.2/24")

        engine = self.switch_engine()
        a, _ = engine.add_tap_guest(self.cleanup, NET, "10.78.0.1/24")
        plug = engine.add_port(NET, f"vde,connect={sw_dir}")
        port = engine.port(NET, plug)
        self.assertEqual((port["kind"], port["state"], port["peer"]), ("vde-plug", "connected", sw_dir))
        res = a.ping("10.78.0.2", count=3, interval=0.2)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        c = engine.counters(NET, plug)
        self.assertGreaterEqual(c["rx_frames"], 3)
        self.assertGreaterEqual(c["tx_frames"], 3)
        self.assertEqual([f for f in os.listdir(sw_dir) if f.startswith(".vnet")], [],
                         "vnet's own socket name is removed once connected")
        path = random_file(self.tmp, 1 << 20)
        want = run(["sha256sum", path]).stdout.split()[0]
        self.assertEqual(self.transfer_nc(a, b, "10.78.0.2", path), want)

        # The switch goes away: the port waits, and reconnects to a new one.
        switch.kill()
        switch.wait(timeout=10)
        wait_for(lambda: engine.port(NET, plug)["state"].startswith("waiting"), what="the plug to notice")
        switch = subprocess.Popen(["vde_switch", "-s", sw_dir, "-mod", "777"], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.cleanup.process(switch)
        wait_for(lambda: engine.port(NET, plug)["state"] == "connected", timeout=15, what="reconnect")

    def test_spec_errors(self):
        engine = self.switch_engine()
        res = engine.vnet("port", "add", NET, "vde", check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("exactly one of dir=", res.stderr + res.stdout)
        res = engine.vnet("port", "add", NET, "vde,connect=/nonexistent-vde", check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("cannot reach the VDE switch", res.stderr + res.stdout)
        res = engine.vnet("port", "add", NET, "vde,dir=relative", check=False)
        self.assertIn("absolute", res.stderr + res.stdout)


if __name__ == "__main__":
    unittest.main()
