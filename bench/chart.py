#!/usr/bin/env python3
"""Draws bench/run's results as one PNG with gnuplot (Debian: gnuplot-nox).

Three panels: NAT TCP throughput per stack, direction and MTU; the switch's
TCP throughput per stack and MTU; the NAT's one-way TCP latency as a
distribution (percentiles of the ping-pong's round trips, halved) per stack
and MTU.

usage: bench/chart.py RESULTS.json OUT.png   (RESULTS.json: bench/run --out X.md writes X.json)
"""

import os
import shutil
import subprocess
import sys
import tempfile

NAT_STACKS = ("veth", "pasta", "slirp4netns", "vnet")
SWITCH_STACKS = ("veth", "vde_switch", "tap_floor", "vnet")
NAT_BARS = (("tcp_out", "guest->outside"), ("tcp_in", "outside->guest"))
COLORS = {"veth": "#7f7f7f", "pasta": "#1f77b4", "slirp4netns": "#ff7f0e", "vnet": "#2ca02c",
          "vde_switch": "#9467bd", "tap_floor": "#bcbd22"}


def have_gnuplot():
    return shutil.which("gnuplot") is not None


def _num(v):
    return "NaN" if v is None else f"{v:.6g}"


def _bar_rows(results, stacks, figure):
    """One row per (MTU, figure label): the label, then the value of each
    stack that has any (a peer that is not installed has no column).
    Returns (rows, those stacks)."""
    table = []
    for mtu in sorted(results, key=int):
        for label, value_of in figure:
            vals = [value_of(results[mtu].get(s) or {}) for s in stacks]
            if any(v is not None for v in vals):
                table.append((f'"{label}\\nMTU {mtu}"', vals))
    present = [i for i, _ in enumerate(stacks) if any(vals[i] is not None for _, vals in table)]
    rows = [label + " " + " ".join(_num(vals[i]) for i in present) for label, vals in table]
    return rows, [stacks[i] for i in present]


def _latency_rows(nat):
    """Per (stack, MTU) one data block of percentile / one-way us lines."""
    blocks = []
    for mtu in sorted(nat, key=int):
        for stack in NAT_STACKS:
            pcts = (nat[mtu].get(stack) or {}).get("rr_pcts") or {}
            if pcts:
                lines = [f"{float(p):g} {v:.6g}" for p, v in sorted(pcts.items(), key=lambda kv: float(kv[0]))]
                blocks.append((f"{stack}, MTU {mtu}", stack, mtu, lines))
    return blocks


def script(data_dir, png, nat, switch):
    """The gnuplot script for the three panels, with its data files in data_dir."""
    nat_rows, nat_stacks = _bar_rows(nat, NAT_STACKS,
                                     [(label, lambda r, k=key: r.get(k)) for key, label in NAT_BARS])
    switch_rows, switch_stacks = _bar_rows(switch, SWITCH_STACKS,
                                           [("switch TCP", lambda r: (r.get("tcp") or {}).get("gbps"))])
    latency = _latency_rows(nat)
    panels = [p for p in (nat_rows, switch_rows, latency) if p]
    if not panels:
        raise ValueError("no figures to draw: the results hold no NAT TCP, switch or latency figures")
    lines = [f'set terminal pngcairo noenhanced size 1400,{420 * len(panels)} font "sans,10"',
             f'set output "{png}"',
             f"set multiplot layout {len(panels)},1",
             "set grid ytics", "set key outside right top"]

    def bars(name, rows, stacks, title):
        path = os.path.join(data_dir, name)
        with open(path, "w") as f:
            f.write("\n".join(rows) + "\n")
        plots = [f'"{path}" using {i + 2}:xtic(1) title "{s}" lc rgb "{COLORS[s]}"' for i, s in enumerate(stacks)]
        lines.extend([f'set title "{title}"', 'set ylabel "Gbit/s"', "set style data histograms",
                      "set style histogram clustered gap 1", "set style fill solid 0.8 border -1",
                      "set boxwidth 0.9", "unset logscale", "set xtics nomirror", "set yrange [0:*]",
                      "plot " + ", ".join(plots)])

    if nat_rows:
        bars("nat.dat", nat_rows, nat_stacks, "NAT TCP throughput (iperf3, medians)")
    if switch_rows:
        bars("switch.dat", switch_rows, switch_stacks, "Switch TCP throughput, TAP to TAP (iperf3, medians)")
    if latency:
        plots = []
        for i, (title, stack, mtu, data) in enumerate(latency):
            path = os.path.join(data_dir, f"latency{i}.dat")
            with open(path, "w") as f:
                f.write("\n".join(data) + "\n")
            dash = 1 if str(mtu) == "1500" else 2
            plots.append(f'"{path}" using 1:2 with linespoints dt {dash} lc rgb "{COLORS[stack]}" title "{title}"')
        lines.extend(["set title \"NAT TCP one-way latency, 1-byte ping-pong (percentiles)\"",
                      "set style data linespoints", 'set xlabel "percentile"', 'set ylabel "us (lower is better)"',
                      "set logscale y", "set yrange [*:*]", "set xrange [0:100]",
                      "plot " + ", ".join(plots)])
    lines.append("unset multiplot")
    return "\n".join(lines) + "\n"


def draw(results, png):
    """results: {"nat": {mtu: {stack: {...}}}, "switch": {mtu: {stack: {...}}}}.
    Raises RuntimeError if gnuplot fails, ValueError if there is nothing to draw."""
    with tempfile.TemporaryDirectory(prefix="vnet-chart-") as d:
        text = script(d, os.path.abspath(png), results.get("nat") or {}, results.get("switch") or {})
        res = subprocess.run(["gnuplot"], input=text, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise RuntimeError(f"gnuplot failed: {res.stderr.strip()[-500:]}")


def main():
    import json
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    if not have_gnuplot():
        sys.exit("bench/chart.py: gnuplot is not installed (Debian: apt-get install gnuplot-nox)")
    with open(sys.argv[1]) as f:
        draw(json.load(f), sys.argv[2])
    print(f"bench/chart.py: wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
