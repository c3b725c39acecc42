#!/usr/bin/env python3
"""A booted QEMU guest's TCP throughput through each way it can reach vnet.

The guest is the project's guest kit (Debian kernel, busybox, iperf3) under
QEMU with TCG and a virtio-net NIC; inside it iperf3 runs against an iperf3
server on the loopback of the host side, which the guest reaches at the
gateway address 10.0.2.2 (guest->host, then host->guest with -R):

  - vnet-vhost-user: `-netdev vhost-user` on a vnet vhost-user port
    (shared-memory rings);
  - vnet-stream: `-netdev stream` on a vnet stream listener (a unix socket);
  - passt: `-netdev stream` on passt's socket (passt runs as nobody in a
    namespace whose only link is a veth with 192.0.2.1/24 and a default
    route via .254, the gateway the guest reaches the host's loopback at);
  - qemu-user: QEMU's own `-netdev user` (libslirp inside QEMU), the
    reference a QEMU user starts from.

The vnet engine runs in a namespace of its own with its NAT network at
--mtu (default 65520, what passt offers too; the guest takes the MTU its
DHCP server offers, QEMU's user mode offers none: 1500) and the iperf3
server there; QEMU's user-mode
stack reaches the server in QEMU's loopback-only namespace. Medians of
--runs boots. Needs root; the namespaces and processes are removed at the end.

usage: sudo bench/vm_bench.py [--vnet build/vnet] [--seconds 4] [--runs 3] [--json]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import vnetlib  # noqa: E402
from guestkit import GuestKit  # noqa: E402
from vnetlib import Cleanup, Netns, wait_for  # noqa: E402
from rounds import OWN_SESSION  # noqa: E402  (bench/, this script's folder)

STACKS = ("vnet-vhost-user", "vnet-stream", "passt", "qemu-user")
PASST_GATEWAY = "192.0.2.254"
MEMORY = ["-object", "memory-backend-memfd,id=mem,size=256M,share=on", "-machine", "memory-backend=mem"]


def guest_script(seconds, server="10.0.2.2"):
    iperf = f"iperf3 -c {server} -t {seconds} -f m"
    return ("udhcpc -i eth0 -n -q -t 5 -T 2 -O mtu > /dev/null 2>&1 || echo VNET-DHCP-FAILED\n"
            "echo VNET-MTU $(cat /sys/class/net/eth0/mtu)\n"
            # the server may still be starting: wait for it
            f"i=0; until iperf3 -c {server} -t 1 > /dev/null 2>&1; do i=$((i+1)); [ $i -ge 20 ] && break; sleep 0.5; done\n"
            f"echo VNET-OUT $({iperf} | grep receiver)\n"
            f"echo VNET-IN $({iperf} -R | grep receiver)\n")


def gbits(line):
    m = re.search(r"([\d.]+) Mbits/sec", line or "")
    return float(m.group(1)) / 1000 if m else None


class Bench:
    def __init__(self, opts):
        self.opts = opts
        self.tmp = tempfile.mkdtemp(prefix="vnet-vm-bench-")
        os.chmod(self.tmp, 0o755)
        self.kit = GuestKit(self.tmp)

    def boot_once(self, stack):
        cleanup = Cleanup()
        try:
            server_ns, server = None, "10.0.2.2"
            if stack == "qemu-user":
                netdev = ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile="]
            elif stack == "passt":
                server_ns, server = self.passt_host(cleanup)
                netdev = ["-netdev", f"stream,id=n0,server=off,addr.type=unix,addr.path={self.passt_sock}",
                          "-device", "virtio-net-pci,netdev=n0,romfile="]
            else:
                host = Netns(cleanup, "bvm")
                vnetlib.VNET = self.opts.vnet
                engine = vnetlib.Engine(cleanup, extra=("--allow-path", self.tmp), netns=host)
                engine.vnet("net", "add", "nat", "--mode", "nat", "--mtu", str(self.opts.mtu))
                sock = os.path.join(self.tmp, f"{stack}.sock")
                if stack == "vnet-stream":
                    engine.add_port("nat", f"stream,server=on,addr.type=unix,addr.path={sock}")
                    netdev = ["-netdev", f"stream,id=n0,server=off,addr.type=unix,addr.path={sock}",
                              "-device", "virtio-net-pci,netdev=n0,romfile="]
                else:
                    engine.add_port("nat", f"vhost-user,path={sock}")
                    # vectors=0: QEMU 7.2 under TCG crashes starting vhost with MSI-X
                    netdev = MEMORY + ["-chardev", f"socket,id=c0,path={sock}", "-netdev", "vhost-user,id=n0,chardev=c0",
                                       "-device", "virtio-net-pci,netdev=n0,romfile=,vectors=0"]
                server_ns = host
            guest = self.kit.boot(cleanup, netdev if stack != "qemu-user" else MEMORY + netdev,
                                  guest_script(self.opts.seconds, server), name=stack)
            (server_ns or guest.box).popen(cleanup, ["iperf3", "-s", "-B", "127.0.0.1"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            results = guest.finish()
            print(f"vm_bench: {stack}: guest MTU {results.get('VNET-MTU')}", file=sys.stderr)
            return {"tcp_out": gbits(results.get("VNET-OUT")), "tcp_in": gbits(results.get("VNET-IN"))}
        finally:
            cleanup.run_all()

    def passt_host(self, cleanup):
        """A namespace for passt: one veth with an address and a default route
        (passt copies them for its guest), the iperf3 server on its loopback."""
        host, far = Netns(cleanup, "bvp"), Netns(cleanup, "bvq")
        ends = (f"bvp{os.getpid() % 100000}", f"bvq{os.getpid() % 100000}")
        subprocess.run(["ip", "link", "add", ends[0], "netns", host.name, "type", "veth", "peer", "name", ends[1],
                        "netns", far.name], check=True)
        host.configure(ends[0], "192.0.2.1/24")
        far.run(["ip", "link", "set", ends[1], "up"])
        host.run(["ip", "route", "add", "default", "via", PASST_GATEWAY])
        sock_dir = tempfile.mkdtemp(prefix="passt-", dir=self.tmp)
        os.chmod(sock_dir, 0o777)
        self.passt_sock = os.path.join(sock_dir, "passt.sock")
        # passt refuses to run as root.
        host.popen(cleanup, ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                             "passt", "-f", "--socket", self.passt_sock],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **OWN_SESSION)
        wait_for(lambda: os.path.exists(self.passt_sock), what="passt's socket")
        return host, PASST_GATEWAY

    def run(self):
        out = {}
        for stack in self.opts.only:
            runs = [self.boot_once(stack) for _ in range(self.opts.runs)]
            out[stack] = {}
            for key in ("tcp_out", "tcp_in"):
                vals = [r[key] for r in runs if r[key] is not None]
                out[stack][key] = statistics.median(vals) if vals else None
            print(f"vm_bench: {stack}: {out[stack]}", file=sys.stderr)
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vnet", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "vnet"))
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mtu", type=int, default=65520, help="vnet's network MTU (default %(default)s)")
    ap.add_argument("--only", default=",".join(STACKS), help="comma-separated subset of " + ",".join(STACKS))
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    opts = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("vm_bench: needs root (namespaces)")
    opts.vnet = os.path.abspath(opts.vnet)
    opts.only = [s for s in opts.only.split(",") if s]
    bench = Bench(opts)
    try:
        results = bench.run()
    finally:
        shutil.rmtree(bench.tmp, ignore_errors=True)
    for stack, r in results.items():
        print(f"{stack:16} guest->host {r['tcp_out']} Gbit/s, host->guest {r['tcp_in']} Gbit/s")
    if opts.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
