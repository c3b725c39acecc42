"""TCP through the NAT when frames are lost on the guest's link.

vnet's own loss impairment drops a share of the frames a guest sends (or
receives); the NAT must then behave as a good TCP peer would: keep the
segments that arrive after a hole, tell the guest which ones it has
(SACK), and resend only what the guest lost. Measured in what does not
depend on the machine's speed: the guest's own retransmission counter
against the frames the impairment dropped, and sha256 of every transfer.
"""

import hashlib
import os
import subprocess
import unittest

from natlib import INET_ADDR, NatTestCase, listening
from vnetlib import wait_for

SINK_PORT = 7300
MIB = 1 << 20


def tcp_counters(ns):
    """The namespace's TCP MIB (RetransSegs and friends) from /proc/net/snmp."""
    lines = [l.split() for l in ns.run(["cat", "/proc/net/snmp"]).stdout.splitlines() if l.startswith("Tcp:")]
    return dict(zip(lines[0][1:], (int(v) for v in lines[1][1:])))


class NatLossTest(NatTestCase):
    def setUp(self):
        super().setUp()
        self.build_lab()
        self.nat_net()
        self.g = self.guest()
        self.payload = os.path.join(self.tmp, "payload")
        with open(self.payload, "wb") as f:
            f.write(os.urandom(16 * MIB))
        with open(self.payload, "rb") as f:
            self.digest = hashlib.sha256(f.read()).hexdigest()

    def lossy(self, direction, loss="2%"):
        self.e.vnet("port", "set", "nat", str(self.g.port), "--loss", loss, "--direction", direction)

    def lost_frames(self):
        return self.e.counters("nat", self.g.port)["imp_lost"]

    def test_upload_with_loss_resends_only_what_was_lost(self):
        """2% of the guest's frames are lost on the way in: 16 MiB still
        arrive byte-exact, and the guest resends not much more than the
        NAT lost (dropping every segment after a hole makes it resend
        whole windows)."""
        received = os.path.join(self.tmp, "received")
        sink = open(received, "wb")
        self.cleanup.add(sink.close)
        srv = self.inet.popen(self.cleanup, ["nc", "-l", "-d", INET_ADDR, str(SINK_PORT)], stdout=sink,
                              stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(srv.pid, SINK_PORT), what="nc listening in the internet namespace")
        self.lossy("in")
        before = tcp_counters(self.g.ns)["RetransSegs"]
        self.g.sh(f"nc -N -q 5 {INET_ADDR} {SINK_PORT} < {self.payload}", timeout=120)
        srv.wait(timeout=30)
        sink.close()
        with open(received, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), self.digest, "16 MiB arrived byte-exact")
        resent = tcp_counters(self.g.ns)["RetransSegs"] - before
        lost = self.lost_frames()
        print(f"\n  upload, 2% loss: {lost} frames lost, guest resent {resent} segments")
        self.assertGreater(lost, 20)
        self.assertLess(resent, 3 * lost + 20)

    def test_download_with_loss_is_byte_exact(self):
        """2% of the frames toward the guest are lost: the NAT's fast
        retransmits and timeouts resend exactly the lost bytes (a fast
        retransmit once sent the next new bytes under the lost ones'
        sequence number: 16 MiB arrived whole but not equal)."""
        srv = self.inet.popen(self.cleanup, ["sh", "-c", f"exec nc -l -N {INET_ADDR} {SINK_PORT} < {self.payload}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(srv.pid, SINK_PORT), what="nc listening in the internet namespace")
        self.lossy("out")
        got = self.g.run(["sh", "-c", f"nc -d {INET_ADDR} {SINK_PORT} | sha256sum"], timeout=120).stdout.split()[0]
        lost = self.lost_frames()
        print(f"\n  download, 2% loss: {lost} frames lost")
        self.assertGreater(lost, 20)
        self.assertEqual(got, self.digest, "16 MiB arrived byte-exact")

if __name__ == "__main__":
    unittest.main()
