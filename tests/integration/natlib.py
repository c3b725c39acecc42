"""A lab for vnet's NAT networks: real peers on both sides of the translator.

Topology (nothing routes anywhere real):

    guest namespaces --tap--> [vnet engine in ns "host"] --veth--> ns "internet"
                                host 198.51.100.1/24          198.51.100.10/24
                                default via .10               198.51.100.11/24

The internet namespace runs the servers the guests talk to: python's HTTP
server, a TCP echo/discard/chargen + UDP echo server, and dnsmasq as the
resolver the DNS forwarder uses (`--dns-upstream 198.51.100.10`). The host
namespace's 127.0.0.1 is what guests reach as 10.0.2.2. Guests are
configured by busybox udhcpc; the lease they got is read back from a file
the udhcpc script writes. Everything is registered with the test's Cleanup
(processes by PID, namespaces and /etc/netns/<ns> by name).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

from vnetlib import Netns, VnetTestCase, run, short_id, wait_for

HOST_ADDR = "198.51.100.1"
INET_ADDR = "198.51.100.10"
INET_ADDR2 = "198.51.100.11"
GATEWAY = "10.0.2.2"
DNS = "10.0.2.3"
FIRST_LEASE = "10.0.2.15"
GATEWAY_MAC = "52:55:0a:00:02:02"
PY = sys.executable or "python3"

# Ports of the servers in the internet namespace.
ECHO_PORT, DISCARD_PORT, CHARGEN_PORT, HTTP_PORT = 7, 9, 19, 8080
CLOSED_PORT = 9999
LAN_LEASES = "lan.leases"  # dnsmasq's lease file of dhcp_lan(), under the test's tmp dir

# TCP echo (7), discard (9), chargen (19) and UDP echo (7) on one address;
# one thread per connection, ends with its parent's SIGTERM.
SERVERS_PY = r"""
import socket, sys, threading
addr = sys.argv[1]

def serve(port, handler):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(512)
    def loop():
        while True:
            c, _ = s.accept()
            threading.Thread(target=handler, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()

def echo(c):
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                return
            c.sendall(d)

def discard(c):
    with c:
        while c.recv(1 << 20):
            pass

def chargen(c):
    block = bytes(range(256)) * 256
    with c:
        try:
            while True:
                c.sendall(block)
        except OSError:
            pass

serve(7, echo)
serve(9, discard)
serve(19, chargen)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((addr, 7))
while True:
    d, peer = u.recvfrom(65536)
    u.sendto(d, peer)
"""

# The udhcpc script: configures the interface and default route, and
# records what it got as JSON in LEASE_FILE (placeholder replaced per guest).
UDHCPC_SCRIPT = r"""#!/bin/sh
case "$1" in
  deconfig)
    ip addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    ip addr flush dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    printf '{"event":"%s","ip":"%s","mask":"%s","router":"%s","dns":"%s","mtu":"%s","domain":"%s","lease":"%s","serverid":"%s"}\n' \
      "$1" "$ip" "$mask" "$router" "$dns" "$mtu" "$domain" "$lease" "$serverid" > LEASE_FILE
    ;;
esac
exit 0
"""


def listening(pid, port, proto="tcp"):
    """True once a socket of pid's namespace listens on (tcp, tcp6) or is
    bound to (udp, udp6) `port`."""
    state = "0A" if proto.startswith("tcp") else "07"
    try:
        with open(f"/proc/{pid}/net/{proto}") as f:
            lines = f.read().splitlines()[1:]
    except FileNotFoundError:
        return False
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            return True
    return False


def enable_ipv6(ns, *ifnames):
    """Turns IPv6 back on in a namespace the lab made IPv4-only."""
    for key in ("all", "default", "lo") + ifnames:
        ns.run(["sysctl", "-q", "-w", f"net.ipv6.conf.{key}.disable_ipv6=0"])


def tcp_flow_count(nat):
    """Number of TCP flows in a network's `nat` status, whatever its shape
    (a list of flows, or an object with a list or a count)."""
    tcp = nat.get("tcp")
    if isinstance(tcp, list):
        return len(tcp)
    if isinstance(tcp, dict):
        for key in ("flows", "active", "count", "active_flows"):
            v = tcp.get(key)
            if isinstance(v, list):
                return len(v)
            if isinstance(v, int):
                return v
    raise AssertionError(f"cannot find the TCP flow count in nat.tcp: {json.dumps(tcp)[:500]}")


def lease_addresses(nat):
    """IPv4 addresses mentioned by the network's DHCP leases."""
    return set(re.findall(r"\b10\.\d+\.\d+\.\d+\b", json.dumps(nat.get("leases"))))


class Guest:
    """A namespace plugged into a NAT network, configured by DHCP."""

    def __init__(self, ns, port, lease):
        self.ns, self.port, self.lease = ns, port, lease

    @property
    def name(self):
        return self.ns.name

    @property
    def ip(self):
        return self.lease["ip"] if self.lease else None

    def run(self, args, **kw):
        return self.ns.run(args, **kw)

    def sh(self, script, **kw):
        return self.ns.run(["sh", "-c", script], **kw)

    def py(self, code, *args, **kw):
        return self.ns.run([PY, "-c", code] + [str(a) for a in args], **kw)

    def popen(self, cleanup, args, **kw):
        return self.ns.popen(cleanup, args, **kw)


class NatTestCase(VnetTestCase):
    """Builds the host/internet namespaces, the servers and a vnet engine in
    the host namespace; `nat_net()` adds a NAT network, `guest()` a guest."""

    def build_lab(self, http_files=None, engine_extra=()):
        c = self.cleanup
        self.hostns = Netns(c, "nh")
        self.inet = Netns(c, "ni")
        for ns in (self.hostns, self.inet):
            for key in ("all", "default"):
                ns.run(["sysctl", "-q", "-w", f"net.ipv6.conf.{key}.disable_ipv6=1"])
        self.hostns.run(["ip", "link", "add", "up0", "type", "veth", "peer", "name", "in0", "netns", self.inet.name])
        self.hostns.configure("up0", f"{HOST_ADDR}/24")
        self.inet.configure("in0", f"{INET_ADDR}/24")
        self.inet.run(["ip", "addr", "add", f"{INET_ADDR2}/24", "dev", "in0"])
        self.hostns.run(["ip", "route", "add", "default", "via", INET_ADDR])
        # Ping sockets for the ICMP translator (sysctl is per namespace).
        self.hostns.run(["sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"])

        self.www = os.path.join(self.tmp, "www")
        os.makedirs(self.www)
        for name, data in (http_files or {}).items():
            with open(os.path.join(self.www, name), "wb") as f:
                f.write(data)
        self.servers = self.inet.popen(c, [PY, "-c", SERVERS_PY, INET_ADDR], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        self.http = self.inet.popen(c, [PY, "-m", "http.server", "--bind", INET_ADDR, str(HTTP_PORT),
                                        "--directory", self.www],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.dnsmasq = self.inet.popen(c, ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv",
                                           "--no-hosts", f"--listen-address={INET_ADDR}", "--bind-interfaces",
                                           "--address=/www.test/198.51.100.10", "--user=root",
                                           f"--pid-file={os.path.join(self.tmp, 'dnsmasq.pid')}"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(self.servers.pid, CHARGEN_PORT), what="test servers listening")
        wait_for(lambda: listening(self.http.pid, HTTP_PORT), what="http server listening")
        wait_for(lambda: listening(self.dnsmasq.pid, 53, "udp"), what="dnsmasq listening")
        self.e = self.engine(netns=self.hostns, extra=engine_extra)
        return self.e

    def nat_net(self, name="nat", *flags):
        self.e.vnet("net", "add", name, "--mode", "nat", "--dns-upstream", INET_ADDR, *flags)
        return name

    def guest(self, net="nat", dhcp=True, timeout=20):
        ns = Netns(self.cleanup, "ng")
        for key in ("all", "default"):
            ns.run(["sysctl", "-q", "-w", f"net.ipv6.conf.{key}.disable_ipv6=1"])
        port = self.e.add_port(net, f"tap,ifname=eth0,netns={ns.name}")
        ns.run(["ip", "link", "set", "eth0", "up"])
        g = Guest(ns, port, None)
        if dhcp:
            g.lease = self.dhcp(g, timeout=timeout)
        return g

    def dhcp(self, g, timeout=20, check=True):
        """Runs busybox udhcpc in the guest; returns the lease dict (or None)."""
        lease_file = os.path.join(self.tmp, f"lease-{g.name}")
        script = os.path.join(self.tmp, f"udhcpc-{g.name}.sh")
        with open(script, "w") as f:
            f.write(UDHCPC_SCRIPT.replace("LEASE_FILE", lease_file))
        os.chmod(script, 0o755)
        if os.path.exists(lease_file):
            os.unlink(lease_file)
        res = g.run(["busybox", "udhcpc", "-i", "eth0", "-f", "-n", "-q", "-t", "5", "-T", "1",
                     "-O", "mtu", "-s", script], check=False, timeout=timeout)
        if not os.path.exists(lease_file):
            if check:
                raise AssertionError(f"udhcpc got no lease (rc {res.returncode}):\n{res.stdout}\n{res.stderr}")
            return None
        with open(lease_file) as f:
            lease = json.load(f)
        # `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf.
        etc = f"/etc/netns/{g.name}"
        if not os.path.isdir(etc):
            self.cleanup.add(lambda: shutil.rmtree(etc, ignore_errors=True))
            os.makedirs(etc, exist_ok=True)
        with open(os.path.join(etc, "resolv.conf"), "w") as f:
            f.write("".join(f"nameserver {d}\n" for d in lease["dns"].split()) + "options timeout:2 attempts:2\n")
        return lease

    def dhcp_lan(self, uplink="lan-up"):
        """A LAN namespace standing for a real segment: 192.168.80.1 with
        dnsmasq leasing .50-.60 (lease file LAN_LEASES under self.tmp), joined
        by a veth to `uplink` in the host namespace (no address there)."""
        lan = Netns(self.cleanup, "nl")
        self.hostns.run(["ip", "link", "add", uplink, "type", "veth", "peer", "name", "lan0", "netns", lan.name])
        self.hostns.run(["ip", "link", "set", uplink, "up"])
        lan.configure("lan0", "192.168.80.1/24")
        dnsmasq = lan.popen(self.cleanup, ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv",
                                           "--no-hosts", "--interface=lan0", "--bind-interfaces", "--port=0",
                                           "--dhcp-range=192.168.80.50,192.168.80.60,1h", "--user=root",
                                           f"--dhcp-leasefile={self.tmp}/{LAN_LEASES}",
                                           f"--pid-file={self.tmp}/lan-dnsmasq.pid"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(dnsmasq.pid, 67, "udp"), what="the LAN's dnsmasq")
        return lan

    # --- status helpers ---
    def nat_status(self, net="nat"):
        return self.e.network(net)["nat"]

    def nat_counters(self, net="nat"):
        return self.nat_status(net)["counters"]

    def tcp_flows(self, net="nat"):
        return tcp_flow_count(self.nat_status(net))

    # --- host-side helpers ---
    def host_listener(self, port, out_path=None, send_path=None, addr="127.0.0.1"):
        """nc listening in the host namespace on addr:port: receives to
        out_path, or sends send_path and shuts down its write side."""
        if send_path:
            proc = self.hostns.popen(self.cleanup, ["sh", "-c", f"exec nc -l -N {addr} {port} < {send_path}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            sink = open(out_path, "wb")
            self.cleanup.add(sink.close)
            proc = self.hostns.popen(self.cleanup, ["nc", "-l", "-d", addr, str(port)], stdout=sink,
                                     stderr=subprocess.DEVNULL)
        proto = "tcp6" if ":" in addr else "tcp"
        wait_for(lambda: listening(proc.pid, port, proto), what=f"nc listening on {addr}:{port}")
        return proc


def connect_result_py():
    """Python run in a guest: connects to argv[1]:argv[2] (IPv4 or IPv6) with
    a timeout (argv[3], default 5 s) and prints 'connected', 'refused',
    'timeout' or the error, then the seconds."""
    return r"""
import socket, sys, time
t = time.monotonic()
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.settimeout(float(sys.argv[3]) if len(sys.argv) > 3 else 5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    r = "connected"
except ConnectionRefusedError:
    r = "refused"
except socket.timeout:
    r = "timeout"
except OSError as e:
    r = "error:" + str(e.errno)
print(r, round(time.monotonic() - t, 3))
"""


def udp_echo_py():
    """Python run in a guest: sends argv[3] bytes to argv[1]:argv[2] (IPv4 or
    IPv6), prints 'ok' and the answering address and port if the same bytes
    come back within 3 s (tries 3 times)."""
    return r"""
import os, socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
msg = os.urandom(int(sys.argv[3]) if len(sys.argv) > 3 else 64)
for _ in range(3):
    s.sendto(msg, (sys.argv[1], int(sys.argv[2])))
    try:
        d, peer = s.recvfrom(65536)
    except socket.timeout:
        continue
    print("ok" if d == msg else "mismatch", peer[0], peer[1])
    break
else:
    print("timeout")
"""


# Python shared by the UDP burst programs below. A burst is N datagrams of
# SIZE bytes, each its index (4 bytes) and seeded random bytes, sent in
# bursts of 40 as fast as the socket takes them; the receiver reports how
# many distinct ones came, how many came after a later one, and the sha256
# of them in index order, to compare with the sender's.
_BURST_PY = r"""
import hashlib, random, socket, struct, sys, time


def send_burst(s, n, size, peer):
    rnd = random.Random(7)
    h = hashlib.sha256()
    for i in range(n):
        d = struct.pack("!I", i) + rnd.randbytes(size - 4)
        h.update(d)
        s.sendto(d, peer)
        if i % 40 == 39:
            time.sleep(0.002)
    return h.hexdigest()


def receive_burst(s, n, size, first_wait):
    # Until n came (0: any number), or 2 s without a datagram.
    s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE: room for the whole burst
    got, late, highest = {}, 0, -1
    s.settimeout(first_wait)
    try:
        while not n or len(got) < n:
            d = s.recv(65536)
            s.settimeout(2.0)
            if len(d) != size:
                continue
            i = struct.unpack("!I", d[:4])[0]
            late += i < highest
            highest = max(highest, i)
            got[i] = d
    except socket.timeout:
        pass
    h = hashlib.sha256()
    for i in sorted(got):
        h.update(got[i])
    return f"{len(got)} {late} {h.hexdigest()}"


s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
"""


def udp_burst_server_py():
    """Python run in the internet namespace: on UDP port argv[1], answers
    one datagram "N SIZE" with a burst (see _BURST_PY), then prints the
    sha256 of all it sent."""
    return _BURST_PY + r"""
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
req, peer = s.recvfrom(100)
n, size = map(int, req.split())
print(send_burst(s, n, size, peer), flush=True)
"""


def udp_burst_client_py():
    """Python run in a guest: asks argv[1]:argv[2] for a burst of argv[3]
    datagrams of argv[4] bytes; prints what arrived (see _BURST_PY)."""
    return _BURST_PY + r"""
n, size = int(sys.argv[3]), int(sys.argv[4])
s.sendto(f"{n} {size}".encode(), (sys.argv[1], int(sys.argv[2])))
print(receive_burst(s, n, size, 2.0), flush=True)
"""


def udp_sink_py():
    """Python run in the internet namespace: receives a burst of argv[2]-byte
    datagrams on UDP port argv[1] until none has come for 2 s; prints what
    arrived (see _BURST_PY)."""
    return _BURST_PY + r"""
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
print(receive_burst(s, 0, int(sys.argv[2]), 30.0), flush=True)
"""


def udp_send_py():
    """Python run in a guest: sends a burst of argv[3] datagrams of argv[4]
    bytes to argv[1]:argv[2]; prints the sha256 of all it sent."""
    return _BURST_PY + r"""
print(send_burst(s, int(sys.argv[3]), int(sys.argv[4]), (sys.argv[1], int(sys.argv[2]))), flush=True)
"""


def peer_server_py():
    """Python run in a guest: listens on argv[1], accepts one connection,
    prints the peer address, writes what it reads to argv[2]."""
    return r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(1)
c, peer = s.accept()
print(peer[0], peer[1], flush=True)
with open(sys.argv[2], "wb") as f:
    while True:
        d = c.recv(1 << 16)
        if not d:
            break
        f.write(d)
c.close()
"""


def host_connect(ns, port, data=b"", addr="127.0.0.1", timeout=5):
    """From namespace ns, connects to addr:port, sends data; returns
    'refused' / 'sent' / the error."""
    code = r"""
import socket, sys
s = socket.socket()
s.settimeout(%d)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except ConnectionRefusedError:
    print("refused"); sys.exit(0)
except OSError as e:
    print("error", e); sys.exit(0)
s.sendall(sys.stdin.buffer.read())
s.shutdown(socket.SHUT_WR)
s.recv(1)
print("sent")
""" % timeout
    res = subprocess.run(ns.cmd([PY, "-c", code, addr, str(port)]), input=data, capture_output=True,
                         timeout=timeout + 10)
    return res.stdout.decode().strip() or res.stderr.decode().strip()


def free_port(ns):
    """A TCP port nothing listens on in namespace ns (probe by bind)."""
    res = ns.run([PY, "-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
    return int(res.stdout)


# --- raw frames for the malformed-input tests ---

def ip_checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def mac_bytes(mac):
    return bytes.fromhex(mac.replace(":", ""))


def ipv4_header(src, dst, proto, payload_len, ident=1, flags_frag=0x4000, ttl=64, checksum=None, total_len=None):
    hdr = bytearray(20)
    hdr[0] = 0x45
    tl = total_len if total_len is not None else 20 + payload_len
    hdr[2:4] = tl.to_bytes(2, "big")
    hdr[4:6] = ident.to_bytes(2, "big")
    hdr[6:8] = flags_frag.to_bytes(2, "big")
    hdr[8] = ttl
    hdr[9] = proto
    hdr[12:16] = socket.inet_aton(src)
    hdr[16:20] = socket.inet_aton(dst)
    hdr[10:12] = (ip_checksum(bytes(hdr)) if checksum is None else checksum).to_bytes(2, "big")
    return bytes(hdr)


def udp_segment(src, dst, sport, dport, payload, bad_checksum=False):
    seg = bytearray(sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + (8 + len(payload)).to_bytes(2, "big")
                    + b"\0\0" + payload)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + bytes([0, 17]) + len(seg).to_bytes(2, "big")
    c = ip_checksum(pseudo + bytes(seg)) or 0xFFFF
    if bad_checksum:
        c = (c ^ 0x5A5A) or 1
    seg[6:8] = c.to_bytes(2, "big")
    return bytes(seg)


def eth(dst_mac, src_mac, payload, ethertype=0x0800):
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + ethertype.to_bytes(2, "big") + payload


# A guest-side SYN flooder: argv = ifname, src_mac, dst_mac, src_ip, dst_ip,
# dst_port, count. Random source ports and sequence numbers.
SYN_FLOOD_PY = r"""
import os, random, socket, struct, sys
ifname, smac, dmac, src, dst, dport, count = sys.argv[1:8]
dport, count = int(dport), int(count)
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
ethh = bytes.fromhex(dmac.replace(":", "")) + bytes.fromhex(smac.replace(":", "")) + b"\x08\x00"
sa, da = socket.inet_aton(src), socket.inet_aton(dst)
for i in range(count):
    sport = random.randint(20000, 60000)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
    c = csum(sa + da + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0x4000, 64, 6, 0, sa, da)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.send(ethh + ip + tcp)
print("sent", count)
"""
