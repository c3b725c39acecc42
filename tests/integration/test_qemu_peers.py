"""Stock QEMU as the real peer of every vnet frame transport.

Each test runs qemu-system-x86_64 with no guest OS (`-M none`): QEMU's hub
joins its user-mode network stack (DHCP server and gateway 10.0.2.2) to one
socket netdev, whose other end is a vnet port. A namespace guest plugged into
the same vnet network through a TAP device then gets its DHCP lease from
QEMU's stack through vnet and pings QEMU's gateway.

Network safety: every QEMU runs inside a test-made namespace whose only
interface is loopback, so its user-mode stack cannot reach a real address.
For unix transports the engine runs in the host namespace (unix sockets are
shared through the filesystem); for TCP, UDP and multicast transports it runs
in the QEMU's namespace, on that namespace's loopback.
"""

import os
import random
import signal
import subprocess
import time
import unittest
from contextlib import contextmanager

from vnetlib import Cleanup, Netns, VnetTestCase, have, run, wait_for

QEMU = "qemu-system-x86_64"
NET = "q"
LEASE_IP = "10.0.2.15"
GATEWAY = "10.0.2.2"
SLIRP_MAC = "52:55:0a:00:02:02"  # the MAC of QEMU's user-mode gateway

DHCP_SCRIPT = """#!/bin/sh
# udhcpc event script: configure the interface and record the lease.
case "$1" in
  deconfig)
    ip addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    if [ -n "$router" ]; then
      ip route replace default via "${router%% *}" dev "$interface"
    fi
    echo "$ip $router" > "$LEASE_FILE"
    ;;
esac
exit 0
"""

# A UDP flood from a guest toward QEMU's gateway, for the fault test.
UDP_FLOOD = """
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
payload = b"x" * 1200
end = time.monotonic() + 30
while time.monotonic() < end:
    try:
        s.sendto(payload, ("10.0.2.2", 9))
    except OSError:
        time.sleep(0.0005)
"""


def free_port():
    # Every QEMU namespace is fresh and private: any port there is free.
    return random.randint(20000, 40000)


class QemuPeerTest(VnetTestCase):
    def setUp(self):
        super().setUp()
        for cmd in (QEMU, "busybox"):
            if not have(cmd):
                self.skipTest(f"{cmd} not installed")
        self.qemus = []

    def tearDown(self):
        if self._failed():
            self.dump_qemu_logs()
        super().tearDown()

    def dump_qemu_logs(self):
        for proc, log in self.qemus:
            print(f"--- QEMU pid {proc.pid} (rc {proc.poll()}) stderr ---\n{self.qemu_stderr(log)}")

    # ---- helpers ------------------------------------------------------------

    @contextmanager
    def part(self, **params):
        """A subtest with its own Cleanup, undone when it ends (the test's
        scratch dir stays until tearDown)."""
        outer = self.cleanup
        self.cleanup = Cleanup()
        try:
            with self.subTest(**params):
                try:
                    yield
                except BaseException:
                    self.dump_qemu_logs()
                    for e in self.engines:
                        print(f"--- vnet log ({e.run_dir}) ---\n{e.log()[-4000:]}")
                    raise
        finally:
            inner, self.cleanup = self.cleanup, outer
            inner.run_all()

    def qemu_netns(self, multicast=False):
        """A namespace for QEMU with loopback only (checked)."""
        ns = Netns(self.cleanup, prefix="vq")
        links = ns.run(["ip", "-o", "link", "show"]).stdout.strip().splitlines()
        self.assertEqual(len(links), 1, f"QEMU namespace must have only loopback: {links}")
        self.assertIn(": lo:", links[0])
        if multicast:
            run(["ip", "-n", ns.name, "link", "set", "lo", "up", "multicast", "on"])
            run(["ip", "-n", ns.name, "route", "add", "224.0.0.0/4", "dev", "lo"])
        return ns

    @staticmethod
    def qemu_stderr(path):
        try:
            with open(path) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def start_qemu(self, ns, netdev):
        """Starts QEMU in `ns` with its user-mode stack hubbed to `-netdev NETDEV`
        (NETDEV must use id=s). Returns the Popen; its pid is QEMU's own."""
        log = os.path.join(self.tmp, f"qemu-{len(self.qemus)}.stderr")
        args = [QEMU, "-nodefaults", "-display", "none", "-M", "none",
                "-netdev", "user,id=u", "-netdev", netdev,
                "-netdev", "hubport,id=h1,hubid=0,netdev=u",
                "-netdev", "hubport,id=h2,hubid=0,netdev=s"]
        with open(log, "w") as err:
            proc = ns.popen(self.cleanup, args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        self.qemus.append((proc, log))
        # `ip netns exec` execs in place: the pid we hold is QEMU itself.
        def is_qemu():
            if proc.poll() is not None:
                raise AssertionError(f"QEMU exited ({proc.returncode}): {self.qemu_stderr(log)}")
            try:
                with open(f"/proc/{proc.pid}/comm") as f:
                    return f.read().startswith("qemu-system")
            except FileNotFoundError:
                return False
        wait_for(is_qemu, timeout=10, what="QEMU to start")
        return proc

    def assert_qemu_alive(self, proc):
        log = next(l for p, l in self.qemus if p is proc)
        self.assertIsNone(proc.poll(), f"QEMU exited: {self.qemu_stderr(log)}")

    def kill_qemu(self, proc):
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def dhcp(self, guest, ifname="eth0"):
        """Runs busybox udhcpc in the guest; returns (ip, router) of the lease."""
        script = os.path.join(self.tmp, "udhcpc.sh")
        if not os.path.exists(script):
            with open(script, "w") as f:
                f.write(DHCP_SCRIPT)
            os.chmod(script, 0o755)
        lease = os.path.join(self.tmp, f"lease-{guest.name}")
        if os.path.exists(lease):
            os.unlink(lease)
        res = guest.run(["env", f"LEASE_FILE={lease}", "busybox", "udhcpc", "-i", ifname, "-n", "-q",
                         "-t", "5", "-T", "1", "-s", script], check=False, timeout=30)
        if res.returncode != 0 or not os.path.exists(lease):
            raise AssertionError(f"no DHCP lease (rc {res.returncode}):\n{res.stdout}\n{res.stderr}")
        with open(lease) as f:
            fields = f.read().split()
        return fields[0], (fields[1] if len(fields) > 1 else "")

    def new_engine(self, netns=None):
        e = self.engine(netns=netns)
        e.vnet("net", "add", NET)
        return e

    def guest(self, engine, cidr=None):
        """A namespace guest whose eth0 is a TAP on the network; (ns, port id)."""
        ns = Netns(self.cleanup, prefix="vqg")
        tap = engine.add_port(NET, f"tap,ifname=eth0,netns={ns.name}")
        if cidr:
            ns.configure("eth0", cidr)
        else:
            ns.run(["ip", "link", "set", "eth0", "up"])
        return ns, tap

    def ports(self, engine):
        return engine.network(NET)["ports"]

    def port_or_none(self, engine, port_id):
        return next((p for p in self.ports(engine) if p["id"] == port_id), None)

    def child_of(self, engine, parent):
        kids = [p for p in self.ports(engine) if p.get("parent") == parent]
        return kids[0] if len(kids) == 1 else None

    def mac_port(self, engine, mac):
        for m in engine.network(NET)["macs"]:
            if m["mac"] == mac:
                return m["port"]
        return None

    def lease_and_ping(self, engine, guest, port_id, guest_tap=None):
        """The core check: a lease 10.0.2.15 via 10.0.2.2 from QEMU through
        vnet, then a ping of the gateway; QEMU's port counters must move in
        both directions. With guest_tap=(mac, tap port), also checks after
        the lease that the guest's MAC is learned on its TAP port. Returns
        the port's status after the ping."""
        ip, router = self.dhcp(guest)
        self.assertEqual((ip, router), (LEASE_IP, GATEWAY), "lease from QEMU's user-mode stack")
        if guest_tap:
            self.assertEqual(self.mac_port(engine, guest_tap[0]), guest_tap[1],
                             f"guest MAC not on its TAP port: {engine.network(NET)['macs']}")
        before = engine.counters(NET, port_id)
        self.assertGreater(before["rx_frames"], 0, "DHCP replies came in from QEMU")
        self.assertGreater(before["tx_frames"], 0, "DHCP requests went out to QEMU")
        res = guest.ping(GATEWAY, count=2, timeout=20)
        self.assertEqual(res.returncode, 0, f"ping {GATEWAY}:\n{res.stdout}\n{res.stderr}")
        port = engine.port(NET, port_id)
        after = port["counters"]
        self.assertGreaterEqual(after["rx_frames"] - before["rx_frames"], 2, "echo replies from QEMU")
        self.assertGreaterEqual(after["tx_frames"] - before["tx_frames"], 2, "echo requests to QEMU")
        self.assertGreater(after["rx_bytes"], before["rx_bytes"])
        self.assertGreater(after["tx_bytes"], before["tx_bytes"])
        self.assertEqual(port["link"], "up")
        # QEMU's gateway MAC is learned on QEMU's port.
        self.assertEqual(self.mac_port(engine, SLIRP_MAC), port_id)
        return port

    @staticmethod
    def proc_net(proc, table):
        """QEMU's namespace's /proc/net/TABLE, seen through its pid."""
        with open(f"/proc/{proc.pid}/net/{table}") as f:
            return f.read()

    def wait_listening_tcp(self, proc, port):
        wait_for(lambda: f":{port:04X} 00000000:0000 0A" in self.proc_net(proc, "tcp"),
                 timeout=10, what=f"QEMU listening on TCP {port}")

    def wait_bound_udp(self, proc, port):
        wait_for(lambda: f":{port:04X} " in self.proc_net(proc, "udp"),
                 timeout=10, what=f"QEMU bound to UDP {port}")

    # ---- 1. stream, vnet is the server --------------------------------------

    def test_stream_vnet_server_unix(self):
        engine = self.new_engine()
        guest, _ = self.guest(engine)
        path = os.path.join(self.tmp, "vnet.sock")
        listener = engine.add_port(NET, f"stream,server=on,addr.type=unix,addr.path={path}")
        lport = engine.port(NET, listener)
        self.assertEqual((lport["kind"], lport["state"], lport["peer"]),
                         ("stream-listen", "listening", f"unix:{path}"))

        qns = self.qemu_netns()
        qemu = self.start_qemu(qns, f"stream,id=s,server=off,addr.type=unix,addr.path={path}")
        child = wait_for(lambda: self.child_of(engine, listener), timeout=10, what="accepted QEMU connection")
        self.assertNotEqual(child["id"], listener)
        self.assertEqual(child["parent"], listener)
        self.assertEqual(child["kind"], "stream")
        self.assertEqual(child["state"], "connected")
        self.assertEqual(child["peer"], f"unix:{path}")

        port = self.lease_and_ping(engine, guest, child["id"])
        self.assertEqual(port["parent"], listener)
        # The listener carries no frames itself.
        lc = engine.counters(NET, listener)
        self.assertEqual((lc["rx_frames"], lc["tx_frames"]), (0, 0))
        self.assert_qemu_alive(qemu)

        self.kill_qemu(qemu)
        wait_for(lambda: self.port_or_none(engine, child["id"]) is None, timeout=10,
                 what="the accepted port to go away with QEMU")
        lport = engine.port(NET, listener)
        self.assertEqual(lport["state"], "listening")
        self.assertEqual([p["id"] for p in self.ports(engine) if p.get("parent") == listener], [])
        self.assertTrue(engine.alive())

    # ---- 2. stream, vnet is the client (with reconnect) ---------------------

    def test_stream_vnet_client_unix_reconnect(self):
        engine = self.new_engine()
        guest, _ = self.guest(engine)
        path = os.path.join(self.tmp, "qemu.sock")
        pid = engine.add_port(NET, f"stream,server=off,addr.type=unix,addr.path={path}")
        port = engine.port(NET, pid)
        self.assertEqual(port["kind"], "stream-client")
        self.assertEqual(port["peer"], f"unix:{path}")
        self.assertTrue(port["state"] == "connecting" or port["state"].startswith("waiting"),
                        f"before QEMU: state {port['state']!r}")
        time.sleep(0.5)  # a few failed attempts
        state = engine.port(NET, pid)["state"]
        self.assertTrue(state == "connecting" or state.startswith("waiting"), state)

        qns = self.qemu_netns()
        qemu = self.start_qemu(qns, f"stream,id=s,server=on,addr.type=unix,addr.path={path}")
        wait_for(lambda: engine.port(NET, pid)["state"] == "connected", timeout=12,
                 what="vnet to connect to QEMU")
        self.lease_and_ping(engine, guest, pid)
        first = engine.counters(NET, pid)

        # QEMU dies: the port stays and waits; a new QEMU: vnet reconnects alone.
        self.kill_qemu(qemu)
        wait_for(lambda: engine.port(NET, pid)["state"] != "connected", timeout=10,
                 what="vnet to notice QEMU is gone")
        port = engine.port(NET, pid)
        self.assertTrue(port["state"] == "connecting" or port["state"].startswith("waiting"), port["state"])
        qemu2 = self.start_qemu(qns, f"stream,id=s,server=on,addr.type=unix,addr.path={path}")
        wait_for(lambda: engine.port(NET, pid)["state"] == "connected", timeout=12,
                 what="vnet to reconnect to the new QEMU")
        self.assertEqual(self.child_of(engine, pid), None)
        self.assertEqual(len(self.ports(engine)), 2, "same two ports: TAP and the reconnected client")
        port = self.lease_and_ping(engine, guest, pid)
        self.assertGreater(port["counters"]["rx_frames"], first["rx_frames"])
        self.assert_qemu_alive(qemu2)

    # ---- 3. stream over TCP --------------------------------------------------

    def test_stream_inet(self):
        for vnet_server in (True, False):
            with self.part(vnet_server=vnet_server):
                self._stream_inet(vnet_server)

    def _stream_inet(self, vnet_server):
        qns = self.qemu_netns()
        engine = self.new_engine(netns=qns)
        guest, _ = self.guest(engine)
        port_no = free_port()
        addr = f"addr.type=inet,addr.host=127.0.0.1,addr.port={port_no}"
        if vnet_server:
            listener = engine.add_port(NET, f"stream,server=on,{addr}")
            lport = engine.port(NET, listener)
            self.assertEqual((lport["kind"], lport["peer"]), ("stream-listen", f"127.0.0.1:{port_no}"))
            self.start_qemu(qns, f"stream,id=s,server=off,{addr}")
            child = wait_for(lambda: self.child_of(engine, listener), timeout=10, what="accepted QEMU connection")
            self.assertEqual(child["kind"], "stream")
            self.assertEqual(child["state"], "connected")
            self.assertTrue(child["peer"].startswith("127.0.0.1:"), child["peer"])
            self.assertNotEqual(child["peer"], f"127.0.0.1:{port_no}", "peer is QEMU's end")
            pid = child["id"]
        else:
            qemu = self.start_qemu(qns, f"stream,id=s,server=on,{addr}")
            self.wait_listening_tcp(qemu, port_no)
            pid = engine.add_port(NET, f"stream,server=off,{addr}")
            wait_for(lambda: engine.port(NET, pid)["state"] == "connected", timeout=12, what="vnet to connect")
            port = engine.port(NET, pid)
            self.assertEqual((port["kind"], port["peer"]), ("stream-client", f"127.0.0.1:{port_no}"))
        self.lease_and_ping(engine, guest, pid)

    # ---- 4. dgram over unix sockets ------------------------------------------

    def test_dgram_unix(self):
        engine = self.new_engine()
        guest, _ = self.guest(engine)
        a = os.path.join(self.tmp, "vnet.dgram")
        b = os.path.join(self.tmp, "qemu.dgram")
        pid = engine.add_port(NET, f"dgram,local.type=unix,local.path={a},remote.type=unix,remote.path={b}")
        qns = self.qemu_netns()
        self.start_qemu(qns, f"dgram,id=s,local.type=unix,local.path={b},remote.type=unix,remote.path={a}")
        wait_for(lambda: os.path.exists(b), timeout=10, what="QEMU's datagram socket")
        port = self.lease_and_ping(engine, guest, pid)
        self.assertEqual((port["kind"], port["peer"], port["state"]), ("dgram", f"unix:{b}", "up"))

    # ---- 5. dgram over UDP unicast -------------------------------------------

    def test_dgram_udp_unicast(self):
        qns = self.qemu_netns()
        engine = self.new_engine(netns=qns)
        guest, _ = self.guest(engine)
        va = free_port()
        qa = va + 1
        pid = engine.add_port(NET, f"dgram,local.type=inet,local.host=127.0.0.1,local.port={va},"
                                   f"remote.type=inet,remote.host=127.0.0.1,remote.port={qa}")
        qemu = self.start_qemu(qns, f"dgram,id=s,local.type=inet,local.host=127.0.0.1,local.port={qa},"
                                    f"remote.type=inet,remote.host=127.0.0.1,remote.port={va}")
        self.wait_bound_udp(qemu, qa)
        port = self.lease_and_ping(engine, guest, pid)
        self.assertEqual((port["kind"], port["peer"], port["state"]), ("dgram", f"127.0.0.1:{qa}", "up"))

    # ---- 6. legacy -netdev socket listen/connect -----------------------------

    def test_socket_listen_connect(self):
        for vnet_listens in (True, False):
            with self.part(vnet_listens=vnet_listens):
                self._socket_listen_connect(vnet_listens)

    def _socket_listen_connect(self, vnet_listens):
        qns = self.qemu_netns()
        engine = self.new_engine(netns=qns)
        guest, _ = self.guest(engine)
        hp = f"127.0.0.1:{free_port()}"
        if vnet_listens:
            listener = engine.add_port(NET, f"socket,listen={hp}")
            lport = engine.port(NET, listener)
            self.assertEqual((lport["kind"], lport["peer"], lport["state"]), ("stream-listen", hp, "listening"))
            qemu = self.start_qemu(qns, f"socket,id=s,connect={hp}")
            child = wait_for(lambda: self.child_of(engine, listener), timeout=10, what="accepted QEMU connection")
            self.assertEqual((child["kind"], child["state"]), ("stream", "connected"))
            pid = child["id"]
        else:
            qemu = self.start_qemu(qns, f"socket,id=s,listen={hp}")
            self.wait_listening_tcp(qemu, int(hp.split(":")[1]))
            pid = engine.add_port(NET, f"socket,connect={hp}")
            wait_for(lambda: engine.port(NET, pid)["state"] == "connected", timeout=12, what="vnet to connect")
            port = engine.port(NET, pid)
            self.assertEqual((port["kind"], port["peer"]), ("stream-client", hp))
        self.lease_and_ping(engine, guest, pid)
        self.assert_qemu_alive(qemu)

    # ---- 7. multicast buses ---------------------------------------------------

    def test_multicast_socket(self):
        self._multicast("socket,mcast=230.0.0.1:1234,localaddr=127.0.0.1",
                        "socket,id=s,mcast=230.0.0.1:1234,localaddr=127.0.0.1", "230.0.0.1:1234")

    def test_multicast_dgram(self):
        self._multicast("dgram,remote.type=inet,remote.host=230.0.0.1,remote.port=1235,local.host=127.0.0.1",
                        "dgram,id=s,remote.type=inet,remote.host=230.0.0.1,remote.port=1235", "230.0.0.1:1235")

    def _multicast(self, vnet_spec, qemu_netdev, group):
        qns = self.qemu_netns(multicast=True)
        engine = self.new_engine(netns=qns)
        guest, tap = self.guest(engine)
        guest_mac = guest.run(["cat", "/sys/class/net/eth0/address"]).stdout.strip()
        pid = engine.add_port(NET, vnet_spec)
        qemu = self.start_qemu(qns, qemu_netdev)
        self.wait_bound_udp(qemu, int(group.split(":")[1]))
        port = self.lease_and_ping(engine, guest, pid, guest_tap=(guest_mac, tap))
        self.assertEqual((port["kind"], port["peer"], port["state"]), ("mcast", group, "up"))
        # vnet hears its own frames on the bus but must not feed them back:
        # the guest's MAC stays on the TAP port.
        self.assertEqual(self.mac_port(engine, guest_mac), tap, "guest MAC learned on its TAP port")
        res = guest.ping(GATEWAY, count=3, interval=0.2, timeout=20)
        self.assertEqual(res.returncode, 0, res.stdout)
        net = engine.network(NET)
        self.assertEqual(self.mac_port(engine, guest_mac), tap, f"guest MAC moved to the bus: {net['macs']}")
        self.assertEqual(self.mac_port(engine, SLIRP_MAC), pid)
        # Nothing the guest sent came back to it as if from the bus: the TAP
        # port received (tx) no more frames than the bus delivered (rx).
        c = engine.counters(NET, pid)
        tc = engine.counters(NET, tap)
        self.assertLessEqual(tc["tx_frames"], c["rx_frames"],
                             f"TAP got frames the bus did not deliver: tap {tc}, bus {c}")
        self.assert_qemu_alive(qemu)

    # ---- 8. fault: QEMU killed mid-transfer ----------------------------------

    def test_qemu_killed_mid_transfer(self):
        for transport in ("stream-accepted", "stream-client", "dgram"):
            with self.part(transport=transport):
                self._killed_mid_transfer(transport)

    def _killed_mid_transfer(self, transport):
        engine = self.new_engine()
        guest, tap = self.guest(engine)
        qns = self.qemu_netns()
        sock = os.path.join(self.tmp, f"{transport}.sock")
        if transport == "stream-accepted":
            listener = engine.add_port(NET, f"stream,server=on,addr.type=unix,addr.path={sock}")
            qemu = self.start_qemu(qns, f"stream,id=s,server=off,addr.type=unix,addr.path={sock}")
            pid = wait_for(lambda: self.child_of(engine, listener), timeout=10, what="accepted QEMU")["id"]
        elif transport == "stream-client":
            qemu = self.start_qemu(qns, f"stream,id=s,server=on,addr.type=unix,addr.path={sock}")
            wait_for(lambda: os.path.exists(sock), timeout=10, what="QEMU's socket")
            pid = engine.add_port(NET, f"stream,server=off,addr.type=unix,addr.path={sock}")
            wait_for(lambda: engine.port(NET, pid)["state"] == "connected", timeout=12, what="vnet to connect")
        else:
            mine = sock + ".vnet"
            pid = engine.add_port(NET, f"dgram,local.type=unix,local.path={mine},remote.type=unix,remote.path={sock}")
            qemu = self.start_qemu(qns, f"dgram,id=s,local.type=unix,local.path={sock},remote.type=unix,"
                                        f"remote.path={mine}")
            wait_for(lambda: os.path.exists(sock), timeout=10, what="QEMU's datagram socket")
        self.lease_and_ping(engine, guest, pid)

        # Two more TAP guests on the same network, static neighbours that
        # take no part in the load.
        other, other_tap = self.guest(engine, "10.0.2.30/24")
        third, _ = self.guest(engine, "10.0.2.31/24")

        # Load toward QEMU: a UDP flood and a back-to-back ping of the gateway.
        flood = guest.popen(self.cleanup, ["python3", "-c", UDP_FLOOD], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
        pinger = guest.popen(self.cleanup, ["busybox", "ping", "-A", "-s", "1000", "-w", "30", GATEWAY],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start = engine.counters(NET, pid)
        wait_for(lambda: engine.counters(NET, pid)["tx_frames"] - start["tx_frames"] > 500, timeout=10,
                 what="traffic toward QEMU")
        self.assertIsNone(flood.poll())
        self.assertIsNone(pinger.poll())
        self.kill_qemu(qemu)

        if transport == "stream-accepted":
            wait_for(lambda: self.port_or_none(engine, pid) is None, timeout=10, what="dead port removed")
            self.assertEqual(engine.port(NET, listener)["state"], "listening")
        elif transport == "stream-client":
            wait_for(lambda: engine.port(NET, pid)["state"] != "connected", timeout=10,
                     what="dead port to show it")
            state = engine.port(NET, pid)["state"]
            self.assertTrue(state == "connecting" or state.startswith("waiting"), state)
        else:
            # A datagram port has no connection: frames to the gone peer are
            # counted as dropped rather than sent.
            d0 = engine.counters(NET, pid)["drop_down"]
            wait_for(lambda: engine.counters(NET, pid)["drop_down"] > d0 + 10, timeout=10,
                     what="frames to the dead dgram peer counted as drop_down")

        # The flood still runs into the network; the TAP guests still talk.
        time.sleep(0.5)
        self.assertTrue(engine.alive(), "engine died with QEMU")
        self.assertIsNone(flood.poll(), "flood still running")
        # (The flooding guest itself is not pinged: its own TAP queue is
        # full of its flood, so the kernel drops its replies at random.)
        res = other.ping("10.0.2.31", count=3, interval=0.2, timeout=20)
        self.assertEqual(res.returncode, 0, f"TAP-to-TAP ping after QEMU died:\n{res.stdout}")
        res = third.ping("10.0.2.30", count=3, interval=0.2, timeout=20)
        self.assertEqual(res.returncode, 0, f"TAP-to-TAP ping after QEMU died:\n{res.stdout}")
        tc = engine.counters(NET, other_tap)
        self.assertGreaterEqual(tc["rx_frames"], 3)
        self.assertGreaterEqual(tc["tx_frames"], 3)
        self.assertTrue(engine.alive())


if __name__ == "__main__":
    unittest.main()
