"""bench/chart.py draws bench/run's figures with the real gnuplot: a PNG
with every panel for full results, fewer panels for partial ones, and a
clear error when there is nothing to draw."""

import os
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import chart  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_MAGIC, head[:8]
    return struct.unpack(">II", head[16:24])


def stack_figures(scale):
    pcts = {str(p): scale * (40 + p) for p in (1, 10, 50, 90, 99, 99.9)}
    return {"tcp_out": 10 * scale, "tcp_in": 11 * scale, "rr_pcts": pcts}


class ChartTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vnet-chart-test-")

    def draw(self, results):
        out = os.path.join(self.tmp, "c.png")
        chart.draw(results, out)
        return png_size(out)

    def test_full_results_make_three_panels(self):
        nat = {mtu: {s: stack_figures(i + 1) for i, s in enumerate(chart.NAT_STACKS)} for mtu in ("1500", "65520")}
        switch = {"1500": {s: {"tcp": {"gbps": 5.0 + i}} for i, s in enumerate(chart.SWITCH_STACKS)}}
        self.assertEqual(self.draw({"nat": nat, "switch": switch}), (1400, 3 * 420))

    def test_a_missing_peer_and_no_switch_still_draw(self):
        nat = {1500: {"vnet": stack_figures(1), "veth": stack_figures(2), "pasta": None}}
        self.assertEqual(self.draw({"nat": nat, "switch": {}}), (1400, 2 * 420))

    def test_nothing_to_draw_says_so(self):
        with self.assertRaisesRegex(ValueError, "no figures to draw"):
            chart.draw({"nat": {}, "switch": {}}, os.path.join(self.tmp, "none.png"))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "none.png")))


if __name__ == "__main__":
    unittest.main()
