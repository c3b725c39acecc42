"""Measuring on a shared machine: the hypervisor's steal time.

A virtual machine's vCPUs stop whenever the hypervisor runs someone else;
/proc/stat counts that time as steal. A run during which it took more than
a few per cent of the CPU time measures the host, not the stack under test
(docs/benchmarks.md, eighth session), so each run reads the counters around
itself and one over the limit is measured again, at most MAX_REDO times.
Used by nat_bench.py and switch_bench.py.

Also how every stack's forwarder is started, so that all are scheduled
alike (OWN_SESSION; vm_bench.py uses it too).
"""

import sys

# Keyword arguments for subprocess.Popen that start a stack's forwarding
# process (pasta, passt, slirp4netns, tap_floor) in a session of its own, as
# vnet's daemon, `vde_switch -d` and pasta or passt without -f run anyway.
# With the kernel's autogroup scheduling (CONFIG_SCHED_AUTOGROUP, on in
# Debian's kernels) each session is a scheduling group: a forwarder left in
# the bench's session would share one group's CPU time with the iperf3
# processes and guests, while vnet competes with them as a group of its own
# (docs/benchmarks.md, eleventh session).
OWN_SESSION = {"start_new_session": True}

# A run with more steal than the limit is measured again at most this many
# times; the last attempt is kept, with its steal reported.
MAX_REDO = 2
DEFAULT_MAX_STEAL_PCT = 5.0


def steal_counters():
    """(steal, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    return fields[7], sum(fields)


def steal_share(before, after):
    """The share of CPU time the hypervisor gave to others between two readings."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0


def add_max_steal_option(parser):
    parser.add_argument("--max-steal", type=float, default=DEFAULT_MAX_STEAL_PCT,
                        help="measure a run again (at most %d times) when the hypervisor took more than this %%%% "
                             "of the CPU time during it (default %%(default)s)" % MAX_REDO)


class StealCheck:
    """Runs measurements, each measured again while the steal during it was
    over max_steal (a share, 0.05 for 5 %); remembers the steal of every run
    kept and how many runs were measured again."""

    def __init__(self, max_steal):
        self.max_steal = max_steal
        self.steal = []
        self.redone = 0

    def run(self, fn):
        """fn()'s result from the attempt kept."""
        for attempt in range(MAX_REDO + 1):
            before = steal_counters()
            result = fn()
            stolen = steal_share(before, steal_counters())
            if stolen <= self.max_steal or attempt == MAX_REDO:
                break
            print(f"  steal {stolen:.0%} during the run (over {self.max_steal:.0%}): measuring again",
                  file=sys.stderr)
            self.redone += 1
        self.steal.append(stolen)
        return result

    def figures(self):
        """The worst steal of the runs kept, in per cent, and the runs redone."""
        if not self.steal:
            return {}
        return {"steal_max_pct": 100 * max(self.steal), "steal_redone": float(self.redone)}
