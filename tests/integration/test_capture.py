"""pcap ports: a capture file and the live `vnet capture` stream, read by tcpdump."""

import os
import subprocess
import time
import unittest

from vnetlib import VNET, VnetTestCase, run, wait_for
from vnet_it import guest, ping, ping_ok, ping_stats

A, B = "10.0.0.1", "10.0.0.2"


class CaptureTest(VnetTestCase):
    def lab(self):
        e = self.engine()
        e.vnet("net", "add", "lab")
        a, pa = guest(e, self.cleanup, "lab", f"{A}/24")
        b, pb = guest(e, self.cleanup, "lab", f"{B}/24")
        return e, a, b

    def test_pcap_file_port(self):
        e, a, b = self.lab()
        self.assertTrue(ping_ok(a, B, 1))  # ARP before the capture starts
        path = os.path.join(self.tmp, "lab.pcap")
        cap = e.add_port("lab", f"pcap,file={path}")
        self.assertEqual(e.port("lab", cap)["kind"], "pcap")
        res = ping(a, B, 5, interval=0.1)
        self.assertEqual(ping_stats(res)[:2], (5, 5), res.stdout)

        def lines():
            out = run(["tcpdump", "-n", "-r", path, "icmp"], check=False).stdout.splitlines()
            return out if len(out) >= 10 else None

        out = wait_for(lines, timeout=5, what="10 ICMP frames in the capture file")
        requests = [l for l in out if f"{A} > {B}: ICMP echo request" in l]
        replies = [l for l in out if f"{B} > {A}: ICMP echo reply" in l]
        self.assertEqual(len(requests), 5, "\n".join(out))
        self.assertEqual(len(replies), 5, "\n".join(out))
        self.assertEqual(len(out), 10, "each frame captured exactly once")
        # Frames are whole: tcpdump -e shows the real length (56 + 28 + 14 = 98).
        ext = run(["tcpdump", "-n", "-e", "-r", path, "icmp"]).stdout
        self.assertEqual(ext.count("length 98:"), 10, ext)
        self.assertEqual(e.counters("lab", cap)["tx_frames"], 10)

    def test_live_capture(self):
        e, a, b = self.lab()
        self.assertTrue(ping_ok(a, B, 1))
        ports_before = {p["id"] for p in e.network("lab")["ports"]}
        cap = subprocess.Popen([VNET, "--run-dir", e.run_dir, "capture", "lab"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
        self.cleanup.process(cap)
        dump = subprocess.Popen(["tcpdump", "-n", "-r", "-", "-c", "4", "icmp"], stdin=cap.stdout,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.cleanup.process(dump)
        cap.stdout.close()  # tcpdump holds the only read end

        def capture_ports():
            return [p for p in e.network("lab")["ports"] if p["id"] not in ports_before]

        live = wait_for(capture_ports, timeout=5, what="live capture port in status")
        self.assertEqual(len(live), 1)
        self.assertEqual(live[0]["kind"], "pcap")
        pinger = a.popen(self.cleanup, ["busybox", "ping", "-c", "100", "-i", "0.1", B],
                         stdout=subprocess.DEVNULL)
        out, _ = dump.communicate(timeout=20)
        lines = out.splitlines()
        self.assertEqual(len(lines), 4, out)
        self.assertEqual(sum(f"{A} > {B}: ICMP echo request" in l for l in lines), 2, out)
        self.assertEqual(sum(f"{B} > {A}: ICMP echo reply" in l for l in lines), 2, out)
        # The reader is gone: the next frames make `vnet capture` exit and the
        # engine drop the capture port, while the guests keep talking.
        cap.wait(timeout=10)
        wait_for(lambda: not capture_ports(), timeout=5, what="capture port removed")
        self.assertIsNone(pinger.poll(), "ping still running")
        self.assertTrue(ping_ok(b, A, 2))


if __name__ == "__main__":
    unittest.main()
