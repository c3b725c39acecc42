"""Hostile guests on a NAT network: kernel-stack guests in namespaces on
TAPs, one of which sends hand-made frames over a packet socket (forged
source addresses, martian destinations, DHCP storms, TFTP slot hoarding).
Each test is a defect of issue 7 that the old gateway had; see natlib.py for
the lab (nothing leaves the test's namespaces)."""

import hashlib
import json
import os
import random
import socket
import struct
import subprocess
import time
import unittest

from natlib import (DNS, GATEWAY, GATEWAY_MAC, HTTP_PORT, INET_ADDR, INET_ADDR2, PY, NatTestCase, eth,
                    ip_checksum, ipv4_header, listening, udp_segment)
from vnet_it import mac_of
from vnetlib import random_file, read_text, sha256_of, wait_for

BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"


# --- frames -----------------------------------------------------------------

def ipv4(src, dst, proto, l4):
    return ipv4_header(src, dst, proto, len(l4)) + l4


def tcp_segment(src, dst, sport, dport, flags, seq=1, ack=0):
    seg = bytearray(struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0))
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + bytes([0, 6]) + len(seg).to_bytes(2, "big")
    seg[16:18] = ip_checksum(pseudo + bytes(seg)).to_bytes(2, "big")
    return bytes(seg)


def icmp_echo(ident, seq, data=b"spoof"):
    msg = bytearray(struct.pack("!BBHHH", 8, 0, 0, ident, seq) + data)
    msg[2:4] = ip_checksum(bytes(msg)).to_bytes(2, "big")
    return bytes(msg)


def arp(op, smac, sip, tmac, tip):
    return (struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + bytes.fromhex(smac.replace(":", "")) +
            socket.inet_aton(sip) + bytes.fromhex(tmac.replace(":", "")) + socket.inet_aton(tip))


def dhcp_message(mac, msg_type, xid, requested=None):
    m = bytearray(240)
    m[0], m[1], m[2] = 1, 1, 6
    m[4:8] = xid.to_bytes(4, "big")
    m[10:12] = (0x8000).to_bytes(2, "big")  # broadcast flag
    m[28:34] = bytes.fromhex(mac.replace(":", ""))
    m[236:240] = bytes([99, 130, 83, 99])
    opts = bytes([53, 1, msg_type])
    if requested:
        opts += bytes([50, 4]) + socket.inet_aton(requested)
    return bytes(m) + opts + bytes([255]) + bytes(60)


def random_mac(rng):
    return "02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5))


def engine_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def pad60(frame):
    return frame + bytes(max(0, 60 - len(frame)))


# Sends the frames (hex, argv[4:]) every 20 ms from argv[1] for argv[2]
# seconds while counting received IPv4 TCP frames addressed to argv[3];
# prints a JSON summary.
SPOOF_AND_SNIFF_PY = r"""
import json, socket, sys, time
ifname, duration, victim = sys.argv[1], float(sys.argv[2]), socket.inet_aton(sys.argv[3])
frames = [bytes.fromhex(h) for h in sys.argv[4:]]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifname, 0))
s.settimeout(0.02)
sent = stolen = stolen_bytes = 0
end = time.monotonic() + duration
next_send = 0
while time.monotonic() < end:
    if time.monotonic() >= next_send:
        for f in frames:
            s.send(f)
            sent += 1
        next_send = time.monotonic() + 0.02
    try:
        f, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    if addr[2] == socket.PACKET_OUTGOING or len(f) < 34 or f[12:14] != b"\x08\x00":
        continue
    if f[23] == 6 and f[30:34] == victim:
        stolen += 1
        stolen_bytes += len(f)
print(json.dumps({"sent": sent, "stolen_frames": stolen, "stolen_bytes": stolen_bytes}))
"""

# A TCP and UDP server on 0.0.0.0:argv[1] in the engine's namespace: it
# takes whatever host-loopback traffic reaches it (127.0.0.1, 127.1.2.3,
# 0.0.0.0 all land on a wildcard socket) and logs each connection or
# datagram to argv[2].
LOOPBACK_SERVER_PY = r"""
import socket, sys, threading
port, log = int(sys.argv[1]), sys.argv[2]
def note(what):
    with open(log, "a") as f:
        f.write(what + "\n")
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", port))
t.listen(16)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", port))
def udp():
    while True:
        d, peer = u.recvfrom(65535)
        note("udp %s:%d" % peer)
threading.Thread(target=udp, daemon=True).start()
while True:
    c, peer = t.accept()
    note("tcp %s:%d" % peer)
    c.close()
"""

# A DNS server answering every query with a response of exactly argv[2]
# bytes (a TXT record padded to size), on argv[1]:53.
FIXED_SIZE_DNS_PY = r"""
import socket, struct, sys
addr, size = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, 53))
while True:
    q, peer = s.recvfrom(4096)
    qid = q[:2]
    i = 12
    while q[i]:
        i += q[i] + 1
    question = q[12:i + 5]
    head = qid + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question
    fixed = len(head) + 12  # name pointer, type, class, ttl, rdlength
    room = size - fixed
    rdata = b""
    while room > 0:
        n = min(255, room - 1)
        rdata += bytes([n]) + b"x" * n
        room -= n + 1
    rr = struct.pack("!HHHIH", 0xC00C, 16, 1, 60, len(rdata)) + rdata
    s.sendto(head + rr, peer)
"""

# Sends a DNS query for argv[2] with EDNS0 (4096-byte UDP size) to
# argv[1]:53 and prints the answer's length and TC bit, or "timeout".
DNS_QUERY_PY = r"""
import random, socket, struct, sys
server, name = sys.argv[1], sys.argv[2]
qid = random.randrange(65536)
q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1)
for label in name.split("."):
    q += bytes([len(label)]) + label.encode()
q += b"\0" + struct.pack("!HH", 16, 1)
q += b"\0" + struct.pack("!HHIH", 41, 4096, 0, 0)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for _ in range(3):
    s.sendto(q, (server, 53))
    try:
        a = s.recv(65535)
    except socket.timeout:
        continue
    rid, flags = struct.unpack("!HH", a[:4])
    print(len(a), "tc" if flags & 0x0200 else "notc", "id-ok" if rid == qid else "id-bad")
    break
else:
    print("timeout")
"""

# Opens argv[2] UDP sockets, sends each a TFTP RRQ for argv[1] with
# timeout=255 to the gateway, reads each one's first answer and prints the
# counts of OACK / DATA / ERROR and whether an OACK echoed the timeout. The
# transfers are then left hanging (never acknowledged).
TFTP_HOARD_PY = r"""
import json, socket, sys
name, count, gateway = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rrq = b"\0\1" + name.encode() + b"\0octet\0timeout\0" + b"255\0"
socks, out = [], {"oack": 0, "data": 0, "error": 0, "none": 0, "timeout_acked": 0}
for _ in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    s.sendto(rrq, (gateway, 69))
    socks.append(s)
for s in socks:
    try:
        d = s.recv(2048)
    except socket.timeout:
        out["none"] += 1
        continue
    op = d[1]
    if op == 6:
        out["oack"] += 1
        out["timeout_acked"] += b"timeout" in d
    elif op == 3:
        out["data"] += 1
    elif op == 5:
        out["error"] += 1
print(json.dumps(out))
"""

# Sends argv[2] ARP requests for the gateway from eth0 with random sender
# addresses in 10.0.0.0/8 and random source MACs (argv[1]: the gateway MAC is
# not needed: they are broadcast).
SPOOF_FLOOD_PY = r"""
import os, random, socket, struct, sys
count = int(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
rnd = random.Random(1)
gw = socket.inet_aton("10.0.2.2")
for i in range(count):
    mac = bytes([2]) + rnd.getrandbits(40).to_bytes(5, "big")
    sip = (10 << 24 | rnd.getrandbits(24)).to_bytes(4, "big")
    frame = (b"\xff" * 6 + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + sip +
             b"\0" * 6 + gw + b"\0" * 18)
    try:
        s.send(frame)
    except OSError:
        pass
print("sent", count)
"""

UDP_ECHO_SERVER_PY = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    d, peer = s.recvfrom(65535)
    s.sendto(d, peer)
"""

UDP_CLIENT_PY = r"""
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
msg = os.urandom(200)
for _ in range(5):
    s.sendto(msg, (sys.argv[1], int(sys.argv[2])))
    try:
        d = s.recv(65535)
    except socket.timeout:
        continue
    print("ok" if d == msg else "mismatch")
    break
else:
    print("timeout")
"""


class HostileGuestTest(NatTestCase):
    def send_frames(self, guest, frames):
        """Sends raw frames from a guest's eth0 (packet socket)."""
        script = ("import socket, sys\n"
                  "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n"
                  "s.bind(('eth0', 0))\n"
                  "for h in sys.argv[1:]:\n"
                  "    s.send(bytes.fromhex(h))\n")
        # Command lines are bounded: send in batches.
        for i in range(0, len(frames), 200):
            guest.py(script, *[pad60(f).hex() for f in frames[i:i + 200]])

    # (a) issue item 1: a forged source takes nothing.
    def test_spoofed_source_takes_nothing(self):
        payload = os.urandom(24 << 20)
        self.build_lab(http_files={"big": payload})
        self.nat_net("nat")
        victim, attacker = self.guest(), self.guest()
        vmac, amac = mac_of(victim.ns), mac_of(attacker.ns)
        before = self.nat_counters()
        forged = [
            # pings to the gateway from the victim's address
            eth(GATEWAY_MAC, amac, ipv4(victim.ip, GATEWAY, 1, icmp_echo(0x4242, 1))),
            # ARP claiming the victim's address
            eth(GATEWAY_MAC, amac, arp(2, amac, victim.ip, GATEWAY_MAC, GATEWAY), 0x0806),
            # UDP to the outside from the victim's address
            eth(GATEWAY_MAC, amac, ipv4(victim.ip, INET_ADDR, 17, udp_segment(victim.ip, INET_ADDR, 40000, 7, b"x"))),
            # a TCP ACK from the victim's address to the web server
            eth(GATEWAY_MAC, amac, ipv4(victim.ip, INET_ADDR, 6, tcp_segment(victim.ip, INET_ADDR, 45000,
                                                                               HTTP_PORT, 0x10))),
        ]
        spoofer = self.attacker_popen(attacker, 12, victim.ip, forged)
        time.sleep(1.0)
        out = os.path.join(self.tmp, "big.down")
        victim.run(["curl", "-s", "--max-time", "60", "-o", out, f"http://{INET_ADDR}:{HTTP_PORT}/big"], timeout=90)
        summary = json.loads(spoofer.communicate(timeout=60)[0])
        after = self.nat_counters()
        with open(out, "rb") as f:
            got = f.read()
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(payload).hexdigest(),
                         f"victim's download differs ({len(got)} of {len(payload)} bytes); attacker: {summary}")
        self.assertGreater(summary["sent"], 100, summary)
        self.assertEqual(summary["stolen_frames"], 0, f"the attacker received the victim's frames: {summary}")
        self.assertGreater(after["drop_spoofed"] - before["drop_spoofed"], 100, after)
        arp_table = {e["ip"]: e["mac"] for e in self.nat_status()["arp"]}
        self.assertEqual(arp_table.get(victim.ip), vmac, arp_table)

    def attacker_popen(self, guest, seconds, victim_ip, frames):
        return guest.popen(self.cleanup, [PY, "-c", SPOOF_AND_SNIFF_PY, "eth0", str(seconds), victim_ip] +
                           [pad60(f).hex() for f in frames], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    # (b) issue item 2: host loopback by other names, and martians.
    def loopback_server(self):
        port = 24680
        log = os.path.join(self.tmp, "loopback.log")
        open(log, "w").close()
        srv = self.hostns.popen(self.cleanup, [PY, "-c", LOOPBACK_SERVER_PY, str(port), log],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(srv.pid, port), what="loopback server")
        return port, log

    def martian_frames(self, g, port, targets):
        gmac = mac_of(g.ns)
        frames = []
        for i, dst in enumerate(targets):
            frames.append(eth(GATEWAY_MAC, gmac, ipv4(g.ip, dst, 6, tcp_segment(g.ip, dst, 41000 + i, port, 0x02))))
            frames.append(eth(GATEWAY_MAC, gmac, ipv4(g.ip, dst, 17, udp_segment(g.ip, dst, 42000 + i, port,
                                                                                  b"hello"))))
        return frames

    def test_host_loopback_off_and_martians_refused(self):
        self.build_lab()
        self.nat_net("off", "--host-loopback", "off")
        self.nat_net("on")
        port, log = self.loopback_server()
        g_off = self.guest("off")
        g_on = self.guest("on")
        # Positive control: with host loopback on, the gateway reaches the server.
        res = g_on.py("import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 5).close()",
                      GATEWAY, port, check=False)
        self.assertEqual(res.returncode, 0, res.stderr)
        wait_for(lambda: read_text(log).count("tcp") == 1, what="control connection logged")
        open(log, "w").close()

        off_before, on_before = self.nat_counters("off"), self.nat_counters("on")
        self.send_frames(g_off, self.martian_frames(g_off, port, ["127.0.0.1", "0.0.0.0", "127.1.2.3", GATEWAY]))
        # Martians are refused with host loopback on too.
        self.send_frames(g_on, self.martian_frames(g_on, port, ["127.0.0.1", "0.0.0.0", "127.1.2.3",
                                                                "169.254.1.1", "240.0.0.1"]))
        time.sleep(2)
        seen = read_text(log)
        self.assertEqual(seen, "", "host loopback reached by a guest")
        off, on = self.nat_counters("off"), self.nat_counters("on")
        self.assertEqual(off["drop_martian"] - off_before["drop_martian"], 6, off)
        self.assertEqual(off["drop_host_loopback"] - off_before["drop_host_loopback"], 2, off)
        self.assertEqual(on["drop_martian"] - on_before["drop_martian"], 10, on)

    # (c) issue item 6: a DHCP storm from one port.
    def test_dhcp_storm_leaves_leases_for_another_guest(self):
        self.build_lab()
        self.nat_net("nat", "--net", "10.0.2.0/27")  # pool 10.0.2.15 .. 10.0.2.30
        attacker = self.guest(dhcp=False)
        rng = random.Random(7)
        frames = []
        for i in range(300):
            m = random_mac(rng)
            kind, req = (1, None) if i % 2 == 0 else (3, f"10.0.2.{15 + i % 16}")
            udp = udp_segment("0.0.0.0", "255.255.255.255", 68, 67, dhcp_message(m, kind, 0x1000 + i, req))
            frames.append(eth(BROADCAST_MAC, m, ipv4("0.0.0.0", "255.255.255.255", 17, udp)))
        self.send_frames(attacker, frames)
        newcomer = self.guest(timeout=30)
        self.assertTrue(newcomer.ip and newcomer.ip.startswith("10.0.2."), newcomer.lease)
        c = self.nat_counters()
        self.assertGreater(c["dhcp_port_limit"], 0, c)
        by_port = {}
        for l in self.nat_status()["leases"]:
            if l["state"] in ("bound", "offered"):
                by_port[l["mac"]] = l
        self.assertLessEqual(len(by_port), 4 + 1, self.nat_status()["leases"])

    # (d) issue item 6: TFTP slots.
    def test_tftp_guest_cannot_hold_every_slot(self):
        self.build_lab()
        tftp_dir = os.path.join(self.tmp, "tftp")
        os.makedirs(tftp_dir)
        boot = random_file(tftp_dir, 200000)
        os.rename(boot, os.path.join(tftp_dir, "boot.bin"))
        boot = os.path.join(tftp_dir, "boot.bin")
        self.nat_net("nat", "--tftp", tftp_dir)
        hoarder, other = self.guest(), self.guest()
        res = hoarder.py(TFTP_HOARD_PY, "boot.bin", 70, GATEWAY, timeout=60)
        got = json.loads(res.stdout)
        self.assertEqual(got["oack"] + got["data"], 4, got)
        self.assertEqual(got["timeout_acked"], 0, f"timeout=255 accepted: {got}")
        self.assertEqual(got["error"], 66, got)
        out = os.path.join(self.tmp, "boot.down")
        other.sh(f"cd {self.tmp} && busybox tftp -g -r boot.bin -l {out} {GATEWAY}", timeout=60)
        self.assertEqual(sha256_of(out), sha256_of(boot))
        c = self.nat_counters()
        self.assertGreaterEqual(c["tftp_guest_limit"], 66, c)

    # issue item 9: forged sources do not grow the gateway's state.
    def test_spoofed_source_flood_stays_bounded(self):
        self.build_lab()
        self.nat_net("nat", "--net", "10.0.0.0/8", "--gateway", GATEWAY, "--dns", DNS, "--dhcp-start", "10.0.2.15")
        g = self.guest()
        rss_before = engine_rss_kib(self.e.pid)
        g.py(SPOOF_FLOOD_PY, 300000, timeout=300)
        time.sleep(1)
        rss_after = engine_rss_kib(self.e.pid)
        t = time.monotonic()
        nat = self.nat_status()
        status_s = time.monotonic() - t
        bindings = nat.get("neighbours_total", len(nat["arp"]))
        print(f"\n  300k forged ARP sources: engine RSS {rss_before} -> {rss_after} KiB, "
              f"{bindings} bindings, status in {status_s:.2f} s")
        self.assertLess(rss_after - rss_before, 4096, "engine memory grew with forged sources")
        self.assertLessEqual(len(nat["arp"]), 256)
        self.assertLessEqual(bindings, 16 + 1, nat["arp"][:20])
        self.assertGreater(nat["counters"]["drop_neigh_limit"], 1000, nat["counters"])
        # The real guest is still served.
        self.assertEqual(g.py("import socket,sys; s=socket.create_connection((sys.argv[1], 7), 5); "
                              "s.sendall(b'ok'); print(s.recv(2).decode())", INET_ADDR).stdout.strip(), "ok")

    # (e) issue item 10: UDP port-forward replies under --restrict on / --host-loopback off.
    def test_udp_port_forward_replies_under_restrict(self):
        self.build_lab()
        self.nat_net("nat", "--restrict", "on", "--host-loopback", "off")
        g = self.guest()
        guest_port = 7007
        g.popen(self.cleanup, [PY, "-c", UDP_ECHO_SERVER_PY, str(guest_port)], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        host_port = 27007
        self.e.vnet("pf", "add", "nat", f"udp:127.0.0.1:{host_port}-{g.ip}:{guest_port}")
        res = self.hostns.run([PY, "-c", UDP_CLIENT_PY, "127.0.0.1", str(host_port)], timeout=30)
        self.assertEqual(res.stdout.strip(), "ok", self.nat_counters())
        # New flows from the guest are still refused.
        c = self.nat_counters()
        self.assertEqual(c["drop_restricted"], 0, c)

    # (f) issue item 10: a 1480-byte DNS answer arrives truncated, not dropped.
    def test_large_dns_answer_is_truncated(self):
        self.build_lab()
        srv = self.inet.popen(self.cleanup, [PY, "-c", FIXED_SIZE_DNS_PY, INET_ADDR2, "1480"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(srv.pid, 53, "udp"), what="fixed-size DNS server")
        self.e.vnet("net", "add", "nat", "--mode", "nat", "--dns-upstream", INET_ADDR2)
        g = self.guest()
        res = g.py(DNS_QUERY_PY, DNS, "big.test", timeout=30)
        words = res.stdout.split()
        self.assertNotEqual(words, ["timeout"], f"no answer; counters {self.nat_counters()}")
        self.assertEqual(words[1:], ["tc", "id-ok"], res.stdout)
        self.assertLessEqual(int(words[0]), 1500 - 28, res.stdout)


if __name__ == "__main__":
    unittest.main()
