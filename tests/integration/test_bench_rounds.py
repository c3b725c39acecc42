"""The benchmarks' bookkeeping of interleaved rounds and of the
hypervisor's steal time (bench/nat_bench.py, bench/switch_bench.py and
their bench/rounds.py): medians over rounds, errors only for figures no
round measured, a run measured again while steal is over the limit (and
no more than MAX_REDO times), and the steal share read from /proc/stat."""

import importlib.machinery
import os
import subprocess
import sys
import types
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import nat_bench  # noqa: E402
import rounds  # noqa: E402
import switch_bench  # noqa: E402

BENCH_RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "run")


class CombineRoundsTest(unittest.TestCase):
    def test_each_figure_is_the_median_of_the_rounds_that_measured_it(self):
        rounds = [{"tcp_out": 7.0, "rr_median_us": 40.0, "errors": {}},
                  {"tcp_out": 9.0, "rr_median_us": 130.0, "errors": {}},
                  {"tcp_out": 8.0, "errors": {"rr_median_us": "timeout"}}]
        out = nat_bench.combine_rounds(rounds)
        self.assertEqual(out["tcp_out"], 8.0)
        self.assertEqual(out["rr_median_us"], 85.0)
        self.assertEqual(out["errors"], {}, "a figure some round measured carries no error")

    def test_steal_is_the_worst_round_and_redone_runs_add_up(self):
        rounds = [{"steal_max_pct": 1.5, "steal_redone": 0.0}, {"steal_max_pct": 22.0, "steal_redone": 2.0},
                  {"steal_max_pct": 0.5, "steal_redone": 1.0}]
        out = nat_bench.combine_rounds(rounds)
        self.assertEqual(out["steal_max_pct"], 22.0)
        self.assertEqual(out["steal_redone"], 3.0)

    def test_percentiles_are_medians_per_percentile(self):
        rounds = [{"rr_pcts": {"50": 40.0, "99": 100.0}}, {"rr_pcts": {"50": 50.0, "99": 400.0}},
                  {"rr_pcts": {"50": 45.0, "99": 120.0}}]
        self.assertEqual(nat_bench.combine_rounds(rounds)["rr_pcts"], {"50": 45.0, "99": 120.0})

    def test_a_figure_no_round_measured_keeps_its_error(self):
        out = nat_bench.combine_rounds([{"errors": {"conn_rate": "3 failed connects"}}, {"errors": {}}])
        self.assertNotIn("conn_rate", out)
        self.assertEqual(out["errors"], {"conn_rate": "3 failed connects"})

    def test_failed_only_when_every_round_failed(self):
        some = nat_bench.combine_rounds([{"failed": "no TAP"}, {"tcp_out": 1.0}])
        self.assertNotIn("failed", some)
        self.assertIn("1 of 2 rounds failed", some["errors"]["rounds"])
        self.assertEqual(nat_bench.combine_rounds([{"failed": "no TAP"}, {"failed": "no TAP"}])["failed"], "no TAP")

    def test_merging_a_later_turn_keeps_the_worst_steal(self):
        results = {"steal_max_pct": 12.0, "steal_redone": 2.0}
        nat_bench.merge(results, {"steal_max_pct": 3.0, "steal_redone": 1.0, "up_ms": 16.0})
        self.assertEqual((results["steal_max_pct"], results["steal_redone"], results["up_ms"]), (12.0, 3.0, 16.0))


class SwitchRoundsTest(unittest.TestCase):
    def test_each_test_is_the_median_of_the_rounds_that_measured_it(self):
        turns = [{"tcp": {"gbps": 9.0, "fps": None}, "udp64": {"gbps": 0.04, "fps": 80e3}, "rss_kib": 7000},
                 {"tcp": None, "udp64": {"gbps": 0.05, "fps": 90e3}, "rss_kib": 7100},
                 {"tcp": {"gbps": 11.0, "fps": None}, "udp64": {"gbps": 0.03, "fps": 70e3}}]
        out = switch_bench.combine_rounds(turns)
        self.assertEqual(out["tcp"], {"gbps": 10.0, "fps": None})
        self.assertEqual(out["udp64"]["fps"], 80e3)
        self.assertIsNone(out["udp1400"], "no round measured it")
        self.assertEqual(out["rss_kib"], 7100, "the last round that read it")

    def test_bench_runs_table_shows_the_switch_runs_steal_without_ratios(self):
        loader = importlib.machinery.SourceFileLoader("bench_run", BENCH_RUN)
        run = types.ModuleType(loader.name)
        run.__file__ = BENCH_RUN
        loader.exec_module(run)
        figures = {"tcp": {"gbps": 9.0, "fps": None}, "steal_max_pct": 3.5, "steal_redone": 1.0}
        switch = {1500: {"veth": {"tcp": {"gbps": 12.0, "fps": None}, "steal_max_pct": 0.5, "steal_redone": 0.0},
                         "tap_floor": {"tcp": {"gbps": 10.0, "fps": None}},
                         "vnet": figures}}
        lines = run.table({}, {}, switch, None, {}, {}).splitlines()
        header = next(line for line in lines if "vnet/tap_floor" in line)
        self.assertEqual(header.split("|")[3:10], [" veth ", " vde_switch ", " tap_floor ", " vnet ",
                                                   " vnet/veth ", " vnet/vde_switch ", " vnet/tap_floor "])
        tcp = next(line for line in lines if line.startswith("| switch TCP"))
        self.assertEqual(tcp.split("|")[7:10], [" 0.75x ", " n/a ", " 0.90x "])
        steal = next(line for line in lines if "worst hypervisor steal" in line)
        self.assertEqual(steal.split("|")[3:10], [" 0.5 ", " n/a ", " n/a ", " 3.5 ", " - ", " - ", " - "])


class HelpTest(unittest.TestCase):
    def test_every_bench_script_prints_its_help(self):
        bench = os.path.dirname(BENCH_RUN)
        for script in ("run", "nat_bench.py", "switch_bench.py"):
            out = subprocess.run([sys.executable, os.path.join(bench, script), "--help"],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, f"{script}: {out.stderr[-300:]}")
            if script != "run":  # the steal option's help, whose percent sign went through two formats
                self.assertIn("took more than this % of the CPU time", " ".join(out.stdout.split()))


class StealTest(unittest.TestCase):
    def test_share_of_the_cpu_time_between_two_readings(self):
        self.assertAlmostEqual(rounds.steal_share((100, 1000), (150, 1200)), 0.25)
        self.assertEqual(rounds.steal_share((100, 1000), (100, 1000)), 0.0)

    def test_counters_come_from_this_machine(self):
        steal, total = rounds.steal_counters()
        self.assertGreater(total, 0)
        self.assertLessEqual(steal, total)

    def bench_with_steal(self, shares, max_steal=0.05, repeats=2):
        """A Bench whose steal readings give `shares` in turn, one per run."""
        bench = nat_bench.Bench.__new__(nat_bench.Bench)
        bench.repeats, bench.steal = repeats, rounds.StealCheck(max_steal)
        readings, steal, total = [], 0, 0
        for share in shares:  # each run reads before and after itself
            readings.append((steal, total))
            steal, total = steal + round(100 * share), total + 100
            readings.append((steal, total))
        counters = iter(readings).__next__
        self.addCleanup(setattr, rounds, "steal_counters", rounds.steal_counters)
        rounds.steal_counters = counters
        return bench

    def test_a_run_over_the_limit_is_measured_again(self):
        bench = self.bench_with_steal([0.20, 0.01, 0.02])
        calls = []
        runs, err = bench.repeat(lambda: (calls.append(1) or {"n": len(calls)}, None))
        self.assertEqual(len(calls), 3)
        self.assertEqual([r["n"] for r in runs], [2, 3], "the spoiled first run is not kept")
        self.assertEqual(bench.steal.redone, 1)
        self.assertIsNone(err)

    def test_measured_again_at_most_max_redo_times(self):
        bench = self.bench_with_steal([0.30] * (rounds.MAX_REDO + 1), repeats=1)
        calls = []
        runs, _ = bench.repeat(lambda: (calls.append(1) or {"n": len(calls)}, None))
        self.assertEqual(len(calls), rounds.MAX_REDO + 1)
        self.assertEqual(len(runs), 1, "the last attempt is kept, with its steal reported")
        self.assertAlmostEqual(max(bench.steal.steal), 0.30, places=2)
        self.assertEqual(bench.steal.figures()["steal_redone"], float(rounds.MAX_REDO))


if __name__ == "__main__":
    unittest.main()
