"""Soak: several guests on one NAT network keep a mix of traffic going for a
bounded time (TCP echo and HTTP downloads checked byte for byte with
sha256, UDP echo, DNS, ICMP echo to the gateway and to the internet, TCP
and UDP port forwards from the host's loopback into every guest); at the
end every exchange must have been exact and the engine's resident memory
and open file descriptors must be back near what they were before the
traffic started.

Duration: VNET_SOAK_SECONDS (default 90, what CI runs). A longer run, e.g.
an hour: `VNET_SOAK_SECONDS=3600 VNET_BIN=build/vnet python3 -m unittest -v
test_soak` in tests/integration (as root). All traffic stays inside the
namespaces the test creates (see natlib.py).

Why the tolerances: file descriptors must come back exactly (every flow's
host socket is closed once its flow ends; the wait covers the UDP idle
timeout of 60 s). Resident memory may stay up to 2 MiB per guest port plus
2 MiB above the baseline: each port's output queue is a ring of 2 MiB
allocated at start (FdPort::kDefaultQueueBytes) whose pages become resident
once traffic has used them and stay so, and the C allocator and the flow
tables' hash buckets keep their high-water mark. Memory that grows with the
amount of traffic (a leak per flow or per frame) exceeds that in a long run
(an hour opens hundreds of thousands of flows); the RSS of the first and
second half of the run is printed to show the trend.
"""

import json
import os
import subprocess
import time
import unittest

from natlib import (DNS, ECHO_PORT, GATEWAY, HTTP_PORT, INET_ADDR, PY, NatTestCase, free_port, listening)
from vnetlib import sha256_of, wait_for

SOAK_SECONDS = int(os.environ.get("VNET_SOAK_SECONDS", "90"))
GUESTS = 3
GUEST_TCP_PORT, GUEST_UDP_PORT = 9000, 9001
BLOB_SIZE = 1 << 20
FD_SLACK = 0
QUEUE_KIB_PER_PORT = 2048
RSS_SLACK_KIB = GUESTS * QUEUE_KIB_PER_PORT + 2048
# The UDP idle timeout is 60 s and its sweep runs every 2 s; ICMP's is 30 s.
DRAIN_TIMEOUT = 80

# In each guest: TCP echo (one thread per connection) and UDP echo, for the
# port forwards.
GUEST_ECHO_PY = r"""
import socket, sys, threading
tport, uport = int(sys.argv[1]), int(sys.argv[2])
def echo(c):
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                return
            c.sendall(d)
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", tport))
t.listen(64)
def accept_loop():
    while True:
        c, _ = t.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()
threading.Thread(target=accept_loop, daemon=True).start()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", uport))
while True:
    d, peer = u.recvfrom(65536)
    u.sendto(d, peer)
"""

# Shared by the guest and host load generators: each operation returns the
# bytes it moved or raises; run_ops() loops the operations of one thread
# until the deadline and tallies ok/fail per name, keeping the first errors.
LOAD_COMMON_PY = r"""
import hashlib, json, os, random, socket, struct, sys, threading, time
results, errors, lock = {}, [], threading.Lock()

def tally(name, ok, nbytes=0, err=None):
    with lock:
        r = results.setdefault(name, {"ok": 0, "fail": 0, "bytes": 0})
        r["ok" if ok else "fail"] += 1
        r["bytes"] += nbytes
        if err and len(errors) < 20:
            errors.append(f"{name}: {err}")

def run_ops(deadline, ops, pause=0.0):
    while time.monotonic() < deadline:
        for name, fn in ops:
            try:
                tally(name, True, fn())
            except Exception as e:
                tally(name, False, err=repr(e))
            if pause:
                time.sleep(pause)

def tcp_echo(addr, port, size):
    data = os.urandom(size)
    s = socket.create_connection((addr, port), timeout=20)
    s.settimeout(20)
    def send():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    t = threading.Thread(target=send)
    t.start()
    h, n = hashlib.sha256(), 0
    while True:
        d = s.recv(1 << 16)
        if not d:
            break
        h.update(d)
        n += len(d)
    t.join()
    s.close()
    if h.digest() != hashlib.sha256(data).digest():
        raise AssertionError(f"echo of {size} bytes differs ({n} bytes back)")
    return 2 * size

def udp_echo(addr, port, size, tries=3):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    data = os.urandom(size)
    try:
        for _ in range(tries):
            s.sendto(data, (addr, port))
            try:
                d, peer = s.recvfrom(65536)
            except socket.timeout:
                continue
            if d != data or peer != (addr, port):
                raise AssertionError(f"UDP echo of {size} bytes differs (from {peer})")
            return 2 * size
        raise AssertionError(f"no UDP echo from {addr}:{port} in {tries} tries")
    finally:
        s.close()
"""

GUEST_LOAD_PY = LOAD_COMMON_PY + r"""
seconds, inet, dns, gateway, http_port, blob_sha = sys.argv[1:7]
deadline = time.monotonic() + float(seconds)
inet_b = socket.inet_aton(inet)

def tcp():
    return tcp_echo(inet, 7, random.choice([1, 1000, 65536, 300000, 2 << 20]) + random.randint(0, 999))

def http():
    s = socket.create_connection((inet, int(http_port)), timeout=20)
    s.settimeout(20)
    s.sendall(f"GET /blob HTTP/1.0\r\nHost: {inet}\r\n\r\n".encode())
    buf = bytearray()
    while True:
        d = s.recv(1 << 16)
        if not d:
            break
        buf += d
    s.close()
    body = bytes(buf[buf.find(b"\r\n\r\n") + 4:])
    if hashlib.sha256(body).hexdigest() != blob_sha:
        raise AssertionError(f"HTTP body differs ({len(body)} bytes)")
    return len(buf)

def udp():
    return udp_echo(inet, 7, random.randint(1, 1400))

def dns_lookup():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    try:
        for _ in range(2):
            qid = random.getrandbits(16)
            s.sendto(struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + b"\x03www\x04test\x00\x00\x01\x00\x01",
                     (dns, 53))
            try:
                d = s.recv(4096)
            except socket.timeout:
                continue
            if d[:2] != struct.pack("!H", qid) or inet_b not in d[12:]:
                raise AssertionError(f"bad DNS answer {d[:64].hex()}")
            return len(d)
        raise AssertionError("no DNS answer in 2 tries")
    finally:
        s.close()

def icmp_echo(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(1.0)
    try:
        ident, payload = random.getrandbits(16), os.urandom(random.randint(8, 1000))
        for seq in range(3):
            body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload
            padded = body + b"\0" * (len(body) % 2)
            c = sum(struct.unpack("!%dH" % (len(padded) // 2), padded))
            while c >> 16:
                c = (c & 0xFFFF) + (c >> 16)
            s.sendto(body[:2] + struct.pack("!H", ~c & 0xFFFF) + body[4:], (addr, 0))
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                try:
                    d, peer = s.recvfrom(65536)
                except socket.timeout:
                    break
                icmp = d[(d[0] & 0xF) * 4:]
                if peer[0] == addr and icmp[0] == 0 and icmp[4:8] == struct.pack("!HH", ident, seq):
                    if icmp[8:] != payload:
                        raise AssertionError("ICMP echo payload differs")
                    return 2 * len(payload)
        raise AssertionError(f"no ICMP echo reply from {addr} in 3 tries")
    finally:
        s.close()

threads = [threading.Thread(target=run_ops, args=(deadline, [("tcp", tcp)])),
           threading.Thread(target=run_ops, args=(deadline, [("http", http)], 0.2)),
           threading.Thread(target=run_ops, args=(deadline, [("udp", udp), ("dns", dns_lookup),
                                                             ("icmp_internet", lambda: icmp_echo(inet)),
                                                             ("icmp_gateway", lambda: icmp_echo(gateway))], 0.05))]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"results": results, "errors": errors}))
"""

# In the host namespace: argv = seconds, then "tcp_port:udp_port" per guest.
HOST_LOAD_PY = LOAD_COMMON_PY + r"""
deadline = time.monotonic() + float(sys.argv[1])
threads = []
for i, pair in enumerate(sys.argv[2:]):
    tport, uport = (int(p) for p in pair.split(":"))
    ops = [(f"pf_tcp", lambda tport=tport: tcp_echo("127.0.0.1", tport, random.randint(1, 500000))),
           (f"pf_udp", lambda uport=uport: udp_echo("127.0.0.1", uport, random.randint(1, 1400)))]
    threads.append(threading.Thread(target=run_ops, args=(deadline, ops, 0.05)))
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"results": results, "errors": errors}))
"""


def proc_status(pid):
    """(VmRSS in KiB, number of open fds) of a process."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


class SoakTest(NatTestCase):
    def test_soak_mixed_traffic(self):
        blob = os.urandom(BLOB_SIZE)
        self.build_lab(http_files={"blob": blob})
        self.nat_net("nat")
        blob_path = os.path.join(self.www, "blob")
        guests = [self.guest() for _ in range(GUESTS)]
        forwards = []
        for g in guests:
            echo = g.popen(self.cleanup, [PY, "-c", GUEST_ECHO_PY, str(GUEST_TCP_PORT), str(GUEST_UDP_PORT)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(lambda: listening(echo.pid, GUEST_TCP_PORT), what="guest echo server")
            tport = free_port(self.hostns)
            self.e.vnet("pf", "add", "nat", f"tcp:127.0.0.1:{tport}-{g.ip}:{GUEST_TCP_PORT}")
            uport = free_port(self.hostns)
            self.e.vnet("pf", "add", "nat", f"udp:127.0.0.1:{uport}-{g.ip}:{GUEST_UDP_PORT}")
            forwards.append(f"{tport}:{uport}")
            # Opens what the engine opens once and keeps (the forwarder's upstream socket).
            g.run(["busybox", "nslookup", "www.test", DNS], check=False, timeout=20)
        time.sleep(1.0)
        base_rss, base_fds = proc_status(self.e.pid)
        print(f"\n  soak: {GUESTS} guests, {SOAK_SECONDS} s; engine before: RSS {base_rss} KiB, {base_fds} fds")

        loads = [g.popen(self.cleanup, [PY, "-c", GUEST_LOAD_PY, str(SOAK_SECONDS), INET_ADDR, DNS, GATEWAY,
                                        str(HTTP_PORT), sha256_of(blob_path)]) for g in guests]
        loads.append(self.hostns.popen(self.cleanup, [PY, "-c", HOST_LOAD_PY, str(SOAK_SECONDS)] + forwards))
        samples = []
        start = time.monotonic()
        while any(p.poll() is None for p in loads) and time.monotonic() - start < SOAK_SECONDS + 120:
            samples.append((time.monotonic() - start, *proc_status(self.e.pid)))
            time.sleep(2.0)
        reports = []
        for p in loads:
            out, err = p.communicate(timeout=60)
            try:
                reports.append(json.loads(out.decode().strip().splitlines()[-1]))
            except (ValueError, IndexError):
                self.fail(f"a load generator failed (rc {p.returncode}): {err.decode()[-2000:]}")
        ran_s = time.monotonic() - start
        self.assertTrue(self.e.alive(), "the engine survived the soak")

        # Back to the baseline: wait for idle flows to time out.
        t = time.monotonic()
        drain = []
        while time.monotonic() - t < DRAIN_TIMEOUT:
            drain.append(proc_status(self.e.pid))
            if drain[-1][1] <= base_fds + FD_SLACK:
                break
            time.sleep(1.0)
        drain_s = time.monotonic() - t
        end_rss, end_fds = proc_status(self.e.pid)
        peak_rss = max(s[1] for s in samples)
        peak_fds = max(s[2] for s in samples)
        half = [s[1] for s in samples if s[0] >= ran_s / 2] or [peak_rss]
        first = [s[1] for s in samples if s[0] < ran_s / 2] or [peak_rss]

        totals = {}
        for rep in reports:
            for name, r in rep["results"].items():
                agg = totals.setdefault(name, {"ok": 0, "fail": 0, "bytes": 0})
                for k in agg:
                    agg[k] += r[k]
        print(f"  traffic over {ran_s:.0f} s: " + ", ".join(
            f"{name} {r['ok']} ok/{r['fail']} failed ({r['bytes'] / 1e6:.1f} MB)" for name, r in sorted(totals.items())))
        print(f"  engine: RSS before {base_rss} KiB, peak {peak_rss} KiB (max first half {max(first)}, "
              f"second half {max(half)}), after {end_rss} KiB; fds before {base_fds}, peak {peak_fds}, "
              f"after {end_fds} ({drain_s:.0f} s after the traffic stopped)")

        errors = [e for rep in reports for e in rep["errors"]]
        expected = {"tcp", "http", "udp", "dns", "icmp_internet", "icmp_gateway", "pf_tcp", "pf_udp"}
        self.assertEqual(set(totals), expected, "every kind of traffic ran")
        for rep in reports[:-1]:
            for name in expected - {"pf_tcp", "pf_udp"}:
                self.assertGreater(rep["results"].get(name, {}).get("ok", 0), 0, f"each guest ran {name}")
        failed = {name: r["fail"] for name, r in totals.items() if r["fail"]}
        self.assertEqual(failed, {}, f"every exchange exact and answered; first errors: {errors[:10]}")
        self.assertLessEqual(end_fds, base_fds + FD_SLACK, "the engine's fds back to the baseline")
        self.assertLessEqual(end_rss, base_rss + RSS_SLACK_KIB,
                             f"the engine's RSS back near the baseline ({base_rss} KiB + {RSS_SLACK_KIB} KiB)")


if __name__ == "__main__":
    unittest.main()
