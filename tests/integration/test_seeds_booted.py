"""QEMU's own networking scenarios (the seeds: a guest pair on `-netdev
socket,listen=/connect=`, a multicast bus, nc between guest and host over
user-mode NAT, two guests sharing a bandwidth limit) rebuilt on vnet with
booted guests: the guest kit under QEMU (TCG), each guest's script printing
VNET-* lines. Guests of one test boot in parallel.

The socket and multicast tests meet on loopback, so QEMU and the engine
share one namespace whose only interface is loopback (with 224.0.0.0/4
routed to it: a multicast bus must never reach a real interface). The NAT
tests use the lab of test_modes_booted (engine in the host namespace,
guests on a unix stream listener through `vnet attach`)."""

import os
import subprocess
import time
import unittest

from guestkit import BOOT_BUDGET_S, DHCP, GuestKit, probe
from natlib import INET_ADDR, host_connect, listening
from test_modes_booted import BootedLab, ping_until
from vnetlib import Netns, VnetTestCase, random_file, sha256_of, wait_for

SUBNET = "192.168.77"

# A guest that has printed its results stays up, so that a peer that booted
# later still finds it to ping; the test powers every guest off once all of
# them have reported (see await_results).
HOLD = "sleep 150\n"


def loopback_box(cleanup):
    """A namespace for QEMU and the engine to meet on 127.0.0.1: loopback
    only, multicast routed to it (NOTES: a bus must never leave by eth0)."""
    box = Netns(cleanup, "nb")
    box.run(["ip", "link", "set", "lo", "up", "multicast", "on"])
    box.run(["ip", "route", "add", "224.0.0.0/4", "dev", "lo"])
    links = box.run(["ip", "-o", "link", "show"]).stdout.strip().splitlines()
    assert len(links) == 1 and ": lo:" in links[0], links
    return box


def mac_of(index):
    return f"52:54:00:5e:00:{index:02x}"


def socket_nic(netdev, index):
    """QEMU options for a virtio NIC on `-netdev socket,NETDEV`. Every QEMU
    would otherwise take 52:54:00:12:34:56: on one segment they must differ."""
    return ["-netdev", f"socket,id=n0,{netdev}",
            "-device", f"virtio-net-pci,romfile=,netdev=n0,mac={mac_of(index)}"]


def static_pinger(host, peers):
    """A guest script: SUBNET.host/24 on eth0, then a probe PING-<n> for
    each peer SUBNET.n (waiting for peers still booting), then HOLD."""
    return (f"ip addr add {SUBNET}.{host}/24 dev eth0\n"
            + "".join(probe(f"PING-{n}", ping_until(f"{SUBNET}.{n}")) for n in peers) + HOLD)


def accepted_ports(engine, net, listener):
    """Ids of the ports a listener accepted (one per connection)."""
    return [p["id"] for p in engine.network(net)["ports"] if p.get("parent") == listener]


def await_results(guests, markers):
    """Waits until every guest has printed all of its `markers` (a list per
    guest); the guests stay up (HOLD) for the test to look at vnet."""
    def reported(g, names):
        return all(any(l.startswith(f"VNET-{n} ") for l in g.lines) for n in names)
    try:
        wait_for(lambda: all(reported(g, m) for g, m in zip(guests, markers))
                 or any(g.qemu.poll() is not None for g in guests),
                 timeout=BOOT_BUDGET_S, interval=0.2, what="every guest's results")
    except AssertionError:
        raise AssertionError("guests did not report in time:\n"
                             + "\n".join(f"--- {g.name}\n{g.console()}" for g in guests))


def power_off(guests):
    """Each guest's {VNET-marker: rest of its line}, the guests stopped."""
    for g in guests:
        g.qemu.kill()
    return [g.finish() for g in guests]


class SeedBusTest(VnetTestCase):
    """The engine and every QEMU in one loopback-only namespace."""

    def setUp(self):
        super().setUp()
        self.kit = GuestKit(self.tmp)
        self.box = loopback_box(self.cleanup)
        self.e = self.engine(netns=self.box)

    def boot(self, netdev, index, script):
        return self.kit.boot(self.cleanup, socket_nic(netdev, index), script, name=f"guest {index}", box=self.box)

    def test_socket_listen_connect_pair_ping(self):
        """The seed: guest A on `-netdev socket,listen=`, guest B on
        `socket,connect=` to it, pinging each other. vnet's version: both
        guests connect (`socket,connect=`) to vnet `socket,listen=` ports of
        one switch network and ping each other through it, each guest's MAC
        learned on its own accepted port. The pure-QEMU pair boots beside it
        with the same scripts, as the control: if only vnet's pair fails,
        the fault is vnet's."""
        self.e.vnet("net", "add", "seed")
        listeners = [self.e.add_port("seed", f"socket,listen=127.0.0.1:{p}") for p in (5601, 5602)]
        seed_a = self.boot("listen=127.0.0.1:5701", 1, static_pinger(1, [2]))
        guests = [self.boot("connect=127.0.0.1:5601", 3, static_pinger(1, [2])),
                  self.boot("connect=127.0.0.1:5602", 4, static_pinger(2, [1]))]
        # QEMU's connect= fails at once if nobody listens yet.
        wait_for(lambda: listening(seed_a.qemu.pid, 5701), timeout=30, what="the seed guest's socket listening")
        seed_b = self.boot("connect=127.0.0.1:5701", 2, static_pinger(2, [1]))
        await_results([seed_a, seed_b], [["PING-2"], ["PING-1"]])
        seed_results = power_off([seed_a, seed_b])
        await_results(guests, [["PING-2"], ["PING-1"]])
        ports = [accepted_ports(self.e, "seed", l) for l in listeners]
        learned = {m["mac"]: m["port"] for m in self.e.network("seed")["macs"]}
        vnet_results = power_off(guests)
        self.assertEqual((seed_results[0].get("VNET-PING-2"), seed_results[1].get("VNET-PING-1")), ("ok", "ok"),
                         [f"the pure-QEMU control pair failed:\n{g.console()}" for g in (seed_a, seed_b)])
        self.assertEqual((vnet_results[0].get("VNET-PING-2"), vnet_results[1].get("VNET-PING-1")), ("ok", "ok"),
                         [g.console() for g in guests])
        self.assertEqual([len(p) for p in ports], [1, 1], ports)
        self.assertEqual((learned.get(mac_of(3)), learned.get(mac_of(4))), (ports[0][0], ports[1][0]), learned)

    def test_three_guests_on_one_mcast_bus(self):
        """Three guests on QEMU's `-netdev socket,mcast=` bus ping each other
        (six pings); vnet is a fourth member with a `socket,mcast=` port, and
        a namespace guest on one of its TAPs (.4) answers all three: vnet
        both takes frames off the bus and puts its own on it."""
        bus = "mcast=230.0.0.1:5900,localaddr=127.0.0.1"
        self.e.vnet("net", "add", "bus")
        mport = self.e.add_port("bus", f"socket,{bus}")
        _, tport = self.e.add_tap_guest(self.cleanup, "bus", f"{SUBNET}.4/24")
        members = (1, 2, 3)
        guests = [self.boot(bus, i, static_pinger(i, [n for n in members if n != i] + [4])) for i in members]
        wanted = [[f"PING-{n}" for n in members + (4,) if n != i] for i in members]
        await_results(guests, wanted)
        results = power_off(guests)
        for i, r, g in zip(members, results, guests):
            for n in members:
                if n != i:
                    self.assertEqual(r.get(f"VNET-PING-{n}"), "ok", f"guest .{i} to .{n}:\n{g.console()}")
            self.assertEqual(r.get("VNET-PING-4"), "ok", f"guest .{i} to vnet's TAP guest:\n{g.console()}")
        bus_port = self.e.port("bus", mport)
        self.assertEqual(bus_port["kind"], "mcast", bus_port)
        # Off the bus: at least the ARP and echo requests for .4 of each
        # guest (and more: the guests' broadcasts); onto it: .4's replies.
        self.assertGreaterEqual(bus_port["counters"]["rx_frames"], 3 * 2, bus_port)
        self.assertGreaterEqual(bus_port["counters"]["tx_frames"], 3, bus_port)
        self.assertGreaterEqual(self.e.counters("bus", tport)["tx_frames"], 3)


class SeedNatTest(BootedLab):
    """On the NAT lab of test_modes_booted (its listener and attach)."""

    def test_nc_host_guest_over_nat_gateway(self):
        """busybox nc both ways between a booted guest and the host: the
        guest sends 512 KiB it generated to an nc listening on the host's
        loopback through the gateway 10.0.2.2, and receives a host file
        through a port forward; both arrive byte-exact (sha256)."""
        self.nat_net("nat")
        self.listener("nat")
        received = os.path.join(self.tmp, "from-guest")
        up = self.host_listener(7001, out_path=received)
        self.e.vnet("pf", "add", "nat", "tcp:127.0.0.1:7002-10.0.2.15:7003")
        down = random_file(self.tmp, 768 * 1024)
        script = (DHCP + "dd if=/dev/urandom of=/tmp/f bs=1k count=512 2>/dev/null\n"
                  + "echo VNET-SENT $(sha256sum /tmp/f | cut -d' ' -f1)\n"
                  + probe("UP", "timeout 60 nc 10.0.2.2 7001 < /tmp/f")
                  + "timeout 60 nc -l -p 7003 > /tmp/in &\n"
                  + "until netstat -ltn | grep -q ':7003 '; do sleep 0.1; done\n"
                  + "echo VNET-LISTENING\nwait\n"
                  + "echo VNET-GOT $(sha256sum /tmp/in | cut -d' ' -f1) $(wc -c < /tmp/in)\n")
        g = self.kit.boot(self.cleanup, self.attach("nat"), script)
        wait_for(lambda: any(l.startswith("VNET-LISTENING") for l in g.lines) or g.qemu.poll() is not None,
                 timeout=BOOT_BUDGET_S, interval=0.2, what="the guest's nc listening")
        with open(down, "rb") as f:
            sent = host_connect(self.hostns, 7002, f.read(), timeout=60)
        r = g.finish()
        self.assertEqual((r.get("VNET-ADDR"), r.get("VNET-UP"), sent), ("10.0.2.15", "ok", "sent"), g.console())
        up.wait(timeout=30)
        self.assertEqual(sha256_of(received), r.get("VNET-SENT"), "guest to host")
        self.assertEqual(r.get("VNET-GOT"), f"{sha256_of(down)} {768 * 1024}", "host to guest")

    def test_bandwidth_group_shared_by_two_booted_guests(self):
        """Two guests in one 10 Mbit/s bandwidth group, each offering 20
        Mbit/s, get 10 Mbit/s together (within 10 %), fairly shared,
        measured over one common window on the host: the bytes both ports
        carried into the network between two status samples 8 s apart
        (per-guest iperf3 intervals do not overlap, so their sum is no
        rate). The load is UDP: the limit's own rate and sharing, not how
        TCP through the NAT recovers from the shaper's tail drops."""
        self.nat_net("nat")
        listener = self.listener("nat")
        self.e.vnet("bwgroup", "add", "nat", "vms", "--rate", "10mbit")
        # Set on the listener: every connection it accepts takes it.
        self.e.vnet("port", "set", "nat", str(listener), "--bwgroup", "vms")
        iperf_ports = (5201, 5202)
        for port in iperf_ports:
            srv = self.inet.popen(self.cleanup, ["iperf3", "-s", "-B", INET_ADDR, "-p", str(port)],
                                  stdout=subprocess.DEVNULL)
            wait_for(lambda: listening(srv.pid, port), what="iperf3 listening")
        guests = [self.kit.boot(self.cleanup, self.attach("nat"), DHCP + "echo VNET-STREAMING\n"
                                + f"iperf3 -c {INET_ADDR} -p {port} -u -b 20M -l 1400 -t 60 > /dev/null\n",
                                name=f"guest {i}") for i, port in enumerate(iperf_ports)]
        wait_for(lambda: len(accepted_ports(self.e, "nat", listener)) == 2, timeout=30, what="both QEMUs connected")
        ports = accepted_ports(self.e, "nat", listener)
        wait_for(lambda: all(any(l.startswith("VNET-STREAMING") for l in g.lines) for g in guests),
                 timeout=BOOT_BUDGET_S, interval=0.2, what="both guests streaming")

        def sample():
            t = time.monotonic()
            by_port = {p["id"]: p["counters"] for p in self.e.network("nat")["ports"]}
            return (t + time.monotonic()) / 2, [by_port[p] for p in ports]

        # Both streams under way, then 3 s more for both ports' queues to fill.
        start = sample()[1]
        wait_for(lambda: all(b["rx_bytes"] - a["rx_bytes"] > 256 * 1024 for a, b in zip(start, sample()[1])),
                 timeout=30, interval=0.5, what="both guests' streams under way")
        time.sleep(3)
        t0, before = sample()
        time.sleep(8)
        t1, after = sample()
        # rx_bytes counts Ethernet frames (no FCS, no stream length prefix)
        # as the network takes them, after the port's ingress stage, whose
        # token bucket charges the same frame length: like with like.
        rates = [(b["rx_bytes"] - a["rx_bytes"]) * 8 / (t1 - t0) for a, b in zip(before, after)]
        shown = f"{[round(r / 1e6, 2) for r in rates]} Mbit/s"
        self.assertTrue(9e6 <= sum(rates) <= 11e6, f"{shown}; " + "\n".join(g.console() for g in guests))
        for r in rates:
            self.assertGreaterEqual(r, 0.4 * sum(rates), f"unfair: {shown}")
        # Each guest offered more than its share: the group, not the guests, set the pace.
        self.assertTrue(all(c["imp_queue_drop"] > 0 for c in after), after)
        self.assertEqual([self.e.port("nat", p).get("bwgroup") for p in ports], ["vms", "vms"])
        for g in guests:
            g.qemu.kill()


if __name__ == "__main__":
    unittest.main()
