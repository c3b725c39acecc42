"""IPv6 through a NAT network: guests with static addresses in fec0::/64
(and a static neighbour entry for the gateway) reach an IPv6 server in the
test's internet namespace through vnet's translators, the gateway answers
ping6, and a connect to an address the host has no route to fails at once.
"""

import os
import subprocess
import unittest

from natlib import GATEWAY_MAC, NatTestCase, PY, connect_result_py, enable_ipv6, listening, udp_echo_py
from vnetlib import random_file, sha256_of, wait_for

HOST6 = "2001:db8:100::1"
INET6 = "2001:db8:100::10"
UNROUTED6 = "2001:db8:999::1"
WWW6 = "2001:db8:200::10"
GATEWAY6 = "fec0::2"
SINK_PORT, SOURCE_PORT, UDP_ECHO_PORT = 5001, 5002, 5007

# In the internet namespace: a TCP sink (writes what it gets to argv[2]),
# a TCP source (sends the file argv[3]) and a UDP echo, all on argv[1].
SERVERS6_PY = r"""
import socket, sys, threading
addr, sink_path, source_path = sys.argv[1], sys.argv[2], sys.argv[3]

def listener(port):
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(8)
    return s

def sink():
    s = listener(%d)
    c, _ = s.accept()
    with open(sink_path + ".part", "wb") as f:
        while True:
            d = c.recv(1 << 20)
            if not d:
                break
            f.write(d)
    import os
    os.rename(sink_path + ".part", sink_path)
    c.close()

def source():
    s = listener(%d)
    c, _ = s.accept()
    with open(source_path, "rb") as f:
        c.sendfile(f)
    c.close()

threading.Thread(target=sink, daemon=True).start()
threading.Thread(target=source, daemon=True).start()
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.bind((addr, %d))
while True:
    d, peer = u.recvfrom(65536)
    u.sendto(d, peer)
""" % (SINK_PORT, SOURCE_PORT, UDP_ECHO_PORT)

GUEST_SEND_PY = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
with open(sys.argv[3], "rb") as f:
    s.sendfile(f)
s.shutdown(socket.SHUT_WR)
s.recv(1)
"""

GUEST_RECV_PY = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
with open(sys.argv[3], "wb") as f:
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        f.write(d)
"""

# In a guest: a dual-stack TCP server on port argv[1] that tells each client
# the address it sees it from, then echoes what it gets.
PEER_ECHO_PY = r"""
import socket, sys, threading
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1])))
s.listen(8)
def serve(c, peer):
    ip = peer[0][7:] if peer[0].startswith("::ffff:") else peer[0]
    c.sendall(ip.encode() + b"\n")
    while True:
        d = c.recv(1 << 16)
        if not d:
            break
        c.sendall(d)
    c.close()
while True:
    c, peer = s.accept()
    threading.Thread(target=serve, args=(c, peer), daemon=True).start()
"""

# On the host: connects to [argv[1]]:argv[2], sends the file argv[3] and
# prints the peer line the guest sent, then the sha256 of what came back.
FORWARD_CLIENT_PY = r"""
import hashlib, socket, sys, threading
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
f = s.makefile("rb")
peer = f.readline().decode().strip()
data = open(sys.argv[3], "rb").read()
def send():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=send).start()
h, n = hashlib.sha256(), 0
while True:
    d = f.read1(1 << 16)
    if not d:
        break
    h.update(d)
    n += len(d)
print(peer, h.hexdigest(), n)
"""


class Nat6Test(NatTestCase):
    def setUp(self):
        super().setUp()
        self.build_lab()
        enable_ipv6(self.hostns, "up0")
        enable_ipv6(self.inet, "in0")
        self.hostns.run(["ip", "-6", "addr", "add", f"{HOST6}/64", "dev", "up0", "nodad"])
        self.inet.run(["ip", "-6", "addr", "add", f"{INET6}/64", "dev", "in0", "nodad"])
        # No IPv6 default route on the host: UNROUTED6 has no route at all.
        self.sink_path = os.path.join(self.tmp, "sink6")
        self.source_path = random_file(self.tmp, 100 << 20)
        self.servers6 = self.inet.popen(self.cleanup, [PY, "-c", SERVERS6_PY, INET6, self.sink_path,
                                                       self.source_path],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(self.servers6.pid, SOURCE_PORT, "tcp6"), what="IPv6 servers listening")
        self.nat_net()

    def guest6(self, addr, net="nat"):
        g = self.guest(net=net, dhcp=False)
        g.run(["sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_dad=0"])
        enable_ipv6(g.ns, "eth0")
        g.run(["ip", "-6", "addr", "add", f"{addr}/64", "dev", "eth0", "nodad"])
        g.run(["ip", "-6", "neigh", "replace", GATEWAY6, "lladdr", GATEWAY_MAC, "dev", "eth0", "nud", "permanent"])
        # The gateway's router advertisements may already have set a default
        # route (via its link-local address); this one pins the global address.
        g.run(["ip", "-6", "route", "replace", "default", "via", GATEWAY6, "dev", "eth0"])
        return g

    def test_tcp_udp_ping_and_unrouted(self):
        g = self.guest6("fec0::15")
        # ping6 to the gateway: answered by the gateway itself.
        res = g.run(["busybox", "ping", "-6", "-c", "2", "-W", "2", GATEWAY6], check=False, timeout=20)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        # 100 MB up and down, sha256 equal.
        g.py(GUEST_SEND_PY, INET6, SINK_PORT, self.source_path, timeout=120)
        wait_for(lambda: os.path.exists(self.sink_path), timeout=30, what="the sink got the upload")
        self.assertEqual(sha256_of(self.sink_path), sha256_of(self.source_path))
        down = os.path.join(self.tmp, "down6")
        g.py(GUEST_RECV_PY, INET6, SOURCE_PORT, down, timeout=120)
        self.assertEqual(sha256_of(down), sha256_of(self.source_path))
        # UDP echo over IPv6.
        out = g.py(udp_echo_py(), INET6, UDP_ECHO_PORT, 512, timeout=20).stdout.split()
        self.assertEqual(out[:2], ["ok", INET6])
        # The host has no route: the guest's connect is refused at once.
        res = g.py(connect_result_py(), UNROUTED6, 80, 10, timeout=20).stdout.split()
        self.assertEqual(res[0], "refused")
        self.assertLess(float(res[1]), 3.0)
        counters = self.nat_counters()
        self.assertGreater(counters["ipv6_in"], 0)
        self.assertGreater(counters["icmp_gateway_replies"], 0)

    def test_gateway_reaches_host_loopback(self):
        g = self.guest6("fec0::16")
        lst = self.hostns.popen(self.cleanup, [PY, "-c", (
            "import socket\n"
            "s=socket.socket(socket.AF_INET6); s.bind(('::1', 6000)); s.listen(1)\n"
            "c,p=s.accept(); c.sendall(b'hello6'); c.close()\n")], stdout=subprocess.DEVNULL)
        wait_for(lambda: listening(lst.pid, 6000, "tcp6"), what="host ::1 listener")
        got = g.py("import socket,sys\ns=socket.create_connection(('fec0::2',6000),timeout=5)\n"
                   "print(s.recv(100).decode())", timeout=20).stdout.strip()
        self.assertEqual(got, "hello6")

    def test_ipv6_port_forwards(self):
        # QEMU's hostfwd=tcp:[::1]:PORT-:22 form (to the network's first
        # IPv4 guest) and VirtualBox's --port-forward-6 form (to an IPv6 guest).
        enable_ipv6(self.hostns, "lo")
        g = self.guest6("fec0::17")
        lease = self.dhcp(g)  # its script flushes the interface's addresses: IPv6 is set again below
        self.assertEqual(lease["ip"], "10.0.2.15")
        g.run(["ip", "-6", "addr", "add", "fec0::17/64", "dev", "eth0", "nodad"])
        g.run(["ip", "-6", "route", "replace", "default", "via", GATEWAY6, "dev", "eth0"])
        srv = g.popen(self.cleanup, [PY, "-c", PEER_ECHO_PY, "8022"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(srv.pid, 8022, "tcp6"), what="guest server")
        self.e.vnet("pf", "add", "nat", "tcp:[::1]:2240-:8022")
        self.e.vnet("pf", "add", "nat", "ssh6:tcp:[::1]:2241:[fec0::17]:8022")
        blob = random_file(self.tmp, 1 << 20)
        want = sha256_of(blob)
        for port, seen in ((2240, "10.0.2.2"), (2241, GATEWAY6)):
            res = self.hostns.run([PY, "-c", FORWARD_CLIENT_PY, "::1", str(port), blob], timeout=60, check=False)
            self.assertEqual(res.returncode, 0, f"forward on [::1]:{port}: {res.stderr[-300:]}")
            out = res.stdout.split()
            self.assertEqual(out, [seen, want, str(1 << 20)], f"forward on [::1]:{port}")
        # A client outside the host (the internet namespace) on the host's
        # own IPv6 address: the guest sees the client's real address.
        self.e.vnet("pf", "add", "nat", f"real6:tcp:[{HOST6}]:2242:[fec0::17]:8022")
        res = self.inet.run([PY, "-c", FORWARD_CLIENT_PY, HOST6, "2242", blob], timeout=60, check=False)
        self.assertEqual(res.returncode, 0, f"forward on [{HOST6}]:2242: {res.stderr[-300:]}")
        self.assertEqual(res.stdout.split(), [INET6, want, str(1 << 20)])
        forwards = {f["name"]: f for f in self.e.network("nat")["nat"]["forwards"]}
        self.assertEqual(forwards["tcp6-2240"]["host"], "[::1]:2240")
        self.assertEqual(forwards["ssh6"]["guest"], "[fec0::17]:8022")
        self.assertEqual(forwards["ssh6"]["connections"], 1)
        # The IPv4 loopback is a rule of its own: [::1] listens on IPv6 only.
        res = self.hostns.run([PY, "-c", "import socket; socket.create_connection(('127.0.0.1', 2240), 3)"],
                              check=False)
        self.assertNotEqual(res.returncode, 0)

    def test_ping6_outside_and_aaaa_lookup_over_ipv6(self):
        """Echo to an outside IPv6 host goes through the host's ICMPv6 ping
        socket (the reply is the server's, not made up: with the server's
        address gone, pings fail); an AAAA lookup asked of fec0::3 over IPv6
        is answered by a dnsmasq on the outside's IPv6 address."""
        dnsmasq6 = self.inet.popen(self.cleanup, [
            "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            f"--listen-address={INET6}", "--bind-interfaces", f"--address=/www6.test/{WWW6}", "--user=root",
            f"--pid-file={os.path.join(self.tmp, 'dnsmasq6.pid')}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(dnsmasq6.pid, 53, "udp6"), what="dnsmasq on IPv6")
        self.e.vnet("net", "add", "nat6dns", "--mode", "nat", "--dns-upstream", f"[{INET6}]:53")
        g = self.guest6("fec0::18", net="nat6dns")
        res = g.run(["busybox", "ping", "-6", "-c", "3", "-W", "2", INET6], check=False, timeout=20)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        counters = self.nat_counters("nat6dns")
        self.assertGreaterEqual(counters["icmp_echo_out"], 3)
        self.assertGreaterEqual(counters["icmp_echo_in"], 3)
        self.assertEqual(counters["icmp_unavailable"], 0)
        res = g.run(["busybox", "nslookup", "-type=AAAA", "www6.test", "fec0::3"], check=False, timeout=20)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn(WWW6, res.stdout)
        counters = self.nat_counters("nat6dns")
        self.assertGreaterEqual(counters["dns_answers"], 1)
        # Nothing answers for an address that is gone: no reply is fabricated.
        self.inet.run(["ip", "-6", "addr", "del", f"{INET6}/64", "dev", "in0"])
        res = g.run(["busybox", "ping", "-6", "-c", "2", "-W", "1", INET6], check=False, timeout=20)
        self.assertNotEqual(res.returncode, 0, res.stdout)

    def test_guest_to_guest(self):
        a, b = self.guest6("fec0::21"), self.guest6("fec0::22")
        res = a.run(["busybox", "ping", "-6", "-c", "2", "-W", "2", "fec0::22"], check=False, timeout=20)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)


if __name__ == "__main__":
    unittest.main()
