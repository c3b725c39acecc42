#!/usr/bin/env python3
"""Switch forwarding benchmark: vnet vs vde_switch vs a veth pair, one run.

Two network namespaces exchange traffic with iperf3 (TCP, UDP with 64-byte
and 1400-byte payloads) through:
  - a veth pair between them (the physical limit),
  - vnet: one switch network, each namespace's TAP plugged in as a port,
  - vde_switch (Debian's vde2), each namespace's TAP attached by vde_plug2tap;
  - tap_floor (bench/tap_floor.cpp, built beside vnet): the least a program
    joining two TAPs must do, one read and one write per frame and nothing
    else. vnet/tap_floor is vnet's own cost; tap_floor/veth is what the TAP
    interface itself costs, which no TAP-based switch gets back for large
    frames.
The figures are measured in --runs rounds, each switch set up afresh and
measured once per round in turn, so a slow minute of the machine falls on
every stack alike; a run during which the hypervisor took more than
--max-steal of the CPU is measured again (bench/rounds.py). Prints Gbit/s
and frames/s (medians over the rounds), the ratios vnet/vde_switch and
vnet/veth, and the worst steal of the runs kept. Needs root; all traffic
stays inside the two namespaces it creates, which are deleted at the end.

usage: sudo bench/switch_bench.py [--vnet build/vnet] [--floor build/bench/tap_floor] [--seconds 5] [--runs 3] [--mtu 1500] [--max-steal 5]
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

# The integration tests' process helper (tests/integration).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from vnetlib import terminate  # noqa: E402
from rounds import OWN_SESSION, StealCheck, add_max_steal_option  # noqa: E402  (bench/, this script's folder)

A_ADDR, B_ADDR = "10.250.0.1", "10.250.0.2"
STACKS = ("veth", "vnet", "vde_switch", "tap_floor")
TESTS = {"tcp": [], "udp64": ["-u", "-b", "0", "-l", "64"], "udp1400": ["-u", "-b", "0", "-l", "1400"]}


def sh(args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


class Bench:
    def __init__(self, opts):
        self.opts = opts
        tag = uuid.uuid4().hex[:5]
        self.ns_a, self.ns_b = f"bn-a-{tag}", f"bn-b-{tag}"
        self.tmp = tempfile.mkdtemp(prefix="vnet-bench-")
        self.procs = []
        self.undo = []
        self.round = 0  # names each round's sockets and run dir apart

    # --- topology -------------------------------------------------------
    def make_namespaces(self):
        for ns in (self.ns_a, self.ns_b):
            sh(["ip", "netns", "add", ns])
            self.undo.append(lambda ns=ns: sh(["ip", "netns", "del", ns], check=False))
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])

    def configure(self, ns, dev, addr):
        sh(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev])
        sh(["ip", "-n", ns, "link", "set", dev, "mtu", str(self.opts.mtu)])
        sh(["ip", "-n", ns, "link", "set", dev, "up"])

    def teardown_links(self):
        for ns in (self.ns_a, self.ns_b):
            out = sh(["ip", "-n", ns, "-o", "link", "show"]).stdout
            for line in out.splitlines():
                name = line.split(":")[1].strip().split("@")[0]
                if name != "lo":
                    sh(["ip", "-n", ns, "link", "del", name], check=False)

    def start(self, args, **kw):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            terminate(p)
        self.procs.clear()

    def setup_veth(self):
        sh(["ip", "link", "add", "bva", "netns", self.ns_a, "type", "veth", "peer", "bvb", "netns", self.ns_b])
        self.configure(self.ns_a, "bva", A_ADDR)
        self.configure(self.ns_b, "bvb", B_ADDR)

    def setup_vnet(self):
        run_dir = os.path.join(self.tmp, f"vnet-{self.round}")
        vnet = [self.opts.vnet, "--run-dir", run_dir]
        sh(vnet + ["up"])
        pid = int(open(os.path.join(run_dir, "vnet.pid")).read())
        self.undo.append(lambda: sh(vnet + ["down"], check=False))
        sh(vnet + ["net", "add", "bench", "--mtu", str(max(self.opts.mtu, 1500))])
        sh(vnet + ["port", "add", "bench", f"tap,ifname=eth0,netns={self.ns_a}"])
        sh(vnet + ["port", "add", "bench", f"tap,ifname=eth0,netns={self.ns_b}"])
        self.configure(self.ns_a, "eth0", A_ADDR)
        self.configure(self.ns_b, "eth0", B_ADDR)
        return pid

    def setup_floor(self):
        floor = self.start([self.opts.floor, self.ns_a, self.ns_b, "eth0"], **OWN_SESSION)
        for _ in range(100):  # until it has made both TAPs
            if all(sh(["ip", "-n", ns, "link", "show", "eth0"], check=False).returncode == 0
                   for ns in (self.ns_a, self.ns_b)):
                break
            if floor.poll() is not None:
                raise OSError(f"{self.opts.floor} exited with status {floor.returncode}")
            time.sleep(0.05)
        self.configure(self.ns_a, "eth0", A_ADDR)
        self.configure(self.ns_b, "eth0", B_ADDR)
        return floor.pid

    def daemon(self, args, pid_flag, pidfile, positional=()):
        """Starts a vde tool daemonised (-d) with a pid file; returns its PID, killed on undo."""
        sh(args + ["-d", pid_flag, pidfile] + list(positional))
        for _ in range(50):
            if os.path.exists(pidfile) and open(pidfile).read().strip():
                break
            time.sleep(0.1)
        pid = int(open(pidfile).read())

        def kill():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.undo.append(kill)
        return pid

    def setup_vde(self):
        sock = os.path.join(self.tmp, f"vde-{self.round}.ctl")
        switch_pid = self.daemon(["vde_switch", "-s", sock], "-p",
                                 os.path.join(self.tmp, f"vde_switch-{self.round}.pid"))
        for ns in (self.ns_a, self.ns_b):
            sh(["ip", "-n", ns, "tuntap", "add", "eth0", "mode", "tap"])
            self.daemon(["ip", "netns", "exec", ns, "vde_plug2tap", "-s", sock], "-P",
                        os.path.join(self.tmp, f"plug-{ns}-{self.round}.pid"), ["eth0"])
        self.configure(self.ns_a, "eth0", A_ADDR)
        self.configure(self.ns_b, "eth0", B_ADDR)
        return switch_pid

    # --- measurement ----------------------------------------------------
    def iperf(self, extra):
        server = self.start(["ip", "netns", "exec", self.ns_b, "iperf3", "-s", "-1", "-B", B_ADDR])
        time.sleep(0.3)
        res = sh(["ip", "netns", "exec", self.ns_a, "iperf3", "-c", B_ADDR, "-J", "-t", str(self.opts.seconds)] + extra,
                 check=False, timeout=self.opts.seconds + 30)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:  # the client never reached it
            server.kill()
            server.wait()
        data = json.loads(res.stdout or "{}")
        if "end" not in data:
            return None
        end = data["end"]
        if "-u" not in extra:  # TCP: the receiver's rate
            return {"gbps": end["sum_received"]["bits_per_second"] / 1e9, "fps": None}
        # UDP: what arrived, counted in datagrams of the requested payload size.
        r = end["sum_received"]
        received = r["packets"] - r.get("lost_packets", 0)
        payload = int(extra[extra.index("-l") + 1])
        return {"gbps": received * payload * 8 / r["seconds"] / 1e9, "fps": received / r["seconds"]}

    def turn(self, name, check):
        """Sets up switch `name`, measures each test once, takes it down."""
        setups = {"veth": self.setup_veth, "vnet": self.setup_vnet, "vde_switch": self.setup_vde,
                  "tap_floor": self.setup_floor}
        out = {}
        try:
            pid = setups[name]()
            for test, extra in TESTS.items():
                out[test] = check.run(lambda extra=extra: self.iperf(extra))
            if pid:  # after the traffic
                with open(f"/proc/{pid}/status") as status:
                    rss = [line for line in status if line.startswith("VmRSS")]
                if rss:
                    out["rss_kib"] = int(rss[0].split()[1])
        except (OSError, subprocess.SubprocessError, ValueError) as e:
            print(f"  {name}: failed: {e}", file=sys.stderr)
        finally:
            self.stop_all()
            while len(self.undo) > 2:  # keep the namespaces, undo per-setup steps
                self.undo.pop()()
            self.teardown_links()
        print(f"  {name}: " + ", ".join(f"{k} {v['gbps']:.3f} Gbit/s" + (f" {v['fps']:.0f} frames/s" if v['fps'] else "")
                                         for k, v in out.items() if isinstance(v, dict)), file=sys.stderr)
        return out

    def run(self):
        names = [n for n in STACKS if n in self.opts.only]
        checks = {n: StealCheck(self.opts.max_steal) for n in names}
        turns = {n: [] for n in names}
        self.make_namespaces()
        try:
            for self.round in range(self.opts.runs):
                for name in names:
                    print(f"{name}, round {self.round + 1} of {self.opts.runs} ...", file=sys.stderr)
                    turns[name].append(self.turn(name, checks[name]))
        finally:
            self.stop_all()
            while self.undo:
                self.undo.pop()()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return {n: {**combine_rounds(turns[n]), **checks[n].figures()} for n in names}


def combine_rounds(turns):
    """One switch's figures: per test, the medians over the rounds that
    measured it (None if none did); the resident memory of the last round."""
    out = {}
    for test in TESTS:
        runs = [t[test] for t in turns if t.get(test)]
        out[test] = {"gbps": statistics.median(r["gbps"] for r in runs),
                     "fps": statistics.median(r["fps"] for r in runs) if runs[0]["fps"] is not None else None} \
            if runs else None
    rss = [t["rss_kib"] for t in turns if "rss_kib" in t]
    if rss:
        out["rss_kib"] = rss[-1]
    return out


def report(results, opts):
    names = [n for n in ("veth", "vnet", "vde_switch", "tap_floor") if n in results]
    pairs = [(a, b) for a, b in (("vnet", "vde_switch"), ("vnet", "veth"), ("vnet", "tap_floor"), ("tap_floor", "veth"))
             if a in results and b in results]
    print(f"switch forwarding, iperf3 {opts.seconds}s, median of {opts.runs} rounds (stacks in turn), MTU {opts.mtu}")
    print(f"{'test':<9} " + " ".join(f"{n:>22}" for n in names) + "".join(f" {a + '/' + b:>9}" for a, b in pairs))
    for test in ("tcp", "udp64", "udp1400"):
        cells, vals = [], {}
        for name in names:
            r = results[name].get(test)
            vals[name] = r
            if not r:
                cells.append(f"{'n/a':>22}")
            elif r["fps"]:
                cells.append(f"{r['gbps']:7.3f}G {r['fps']/1e3:9.1f}kfps")
            else:
                cells.append(f"{r['gbps']:7.3f} Gbit/s".rjust(22))

        def ratio(a, b):
            if not vals[a] or not vals[b]:
                return "n/a"
            key = "fps" if vals[a]["fps"] else "gbps"
            return f"{vals[a][key] / vals[b][key]:.2f}x" if vals[b][key] else "n/a"
        print(f"{test:<9} " + " ".join(cells) + "".join(f" {ratio(a, b):>{max(9, len(a) + len(b) + 1)}}" for a, b in pairs))
    for name in ("vnet", "vde_switch", "tap_floor"):
        if "rss_kib" in results.get(name, {}):
            print(f"{name} resident memory after the run: {results[name]['rss_kib'] / 1024:.1f} MiB")
    for name, r in results.items():
        if "steal_max_pct" in r:
            print(f"{name}: worst hypervisor steal of the runs kept {r['steal_max_pct']:.1f} %, "
                  f"{r['steal_redone']:.0f} runs measured again")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vnet", default=os.path.join(os.path.dirname(__file__), "..", "build", "vnet"))
    ap.add_argument("--floor", help="the tap_floor binary (default: bench/tap_floor beside --vnet); "
                    "left out of the run, with a note, if it is not there")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mtu", type=int, default=1500)
    ap.add_argument("--only", default=",".join(STACKS), help="switches to measure (default %(default)s)")
    add_max_steal_option(ap)
    ap.add_argument("--json", action="store_true", help="also print the raw results as JSON")
    opts = ap.parse_args()
    opts.max_steal /= 100
    opts.only = [n.strip() for n in opts.only.split(",") if n.strip()]
    opts.floor = opts.floor or os.path.join(os.path.dirname(os.path.abspath(opts.vnet)), "bench", "tap_floor")
    if "tap_floor" in opts.only and not os.access(opts.floor, os.X_OK):
        print(f"switch_bench: no {opts.floor} (build it: ninja -C build tap_floor); measuring without it",
              file=sys.stderr)
        opts.only.remove("tap_floor")
    if os.geteuid() != 0:
        sys.exit("switch_bench: needs root (namespaces and TAP devices)")
    results = Bench(opts).run()
    report(results, opts)
    if opts.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
