"""Small helpers shared by test_switch, test_capture, test_impairments,
test_faults and test_cli_config (on top of vnetlib)."""

import re
import time

from vnetlib import Netns, run, wait_for

PING_STATS = re.compile(r"(\d+) packets transmitted, (\d+) packets received")
PING_RTT = re.compile(r"round-trip min/avg/max = ([\d.]+)/([\d.]+)/([\d.]+) ms")


def guest(engine, cleanup, net, cidr, mtu=None, vlan=None, flags=(), ifname="eth0"):
    """A namespace with IPv6 off (so the only traffic is what the test sends)
    whose TAP is plugged into `net`; returns (ns, port id)."""
    ns = Netns(cleanup)
    for key in ("all", "default"):
        ns.run(["sysctl", "-q", "-w", f"net.ipv6.conf.{key}.disable_ipv6=1"])
    spec = f"tap,ifname={ifname},netns={ns.name}"
    if vlan is not None:
        spec += f",vlan={vlan}"
    port = engine.add_port(net, spec, *flags)
    if cidr:
        ns.configure(ifname, cidr, mtu)
    else:
        if mtu:
            ns.run(["ip", "link", "set", ifname, "mtu", str(mtu)])
        ns.run(["ip", "link", "set", ifname, "up"])
    return ns, port


def ping_stats(res):
    """(transmitted, received, avg_rtt_ms or None) from busybox ping output."""
    m = PING_STATS.search(res.stdout)
    if not m:
        raise AssertionError(f"no ping statistics in:\n{res.stdout}\n{res.stderr}")
    rtt = PING_RTT.search(res.stdout)
    return int(m.group(1)), int(m.group(2)), float(rtt.group(2)) if rtt else None


def ping(ns, addr, count=3, interval=None, size=None, wait=2, timeout=60):
    args = ["busybox", "ping", "-c", str(count), "-W", str(wait)]
    if interval:
        args += ["-i", str(interval)]
    if size is not None:
        args += ["-s", str(size)]
    return ns.run(args + [addr], check=False, timeout=timeout)


def ping_ok(ns, addr, count=3, **kw):
    res = ping(ns, addr, count, **kw)
    tx, rx, _ = ping_stats(res)
    return res.returncode == 0 and rx == tx == count


def mac_of(ns, ifname="eth0"):
    return ns.run(["cat", f"/sys/class/net/{ifname}/address"]).stdout.strip()


def listening(pid, port):
    """True once a TCP socket in pid's namespace listens on `port`."""
    needle = f":{port:04X} 00000000:0000 0A"
    needle6 = f":{port:04X} 00000000000000000000000000000000:0000 0A"
    for name, n in (("tcp", needle), ("tcp6", needle6)):
        try:
            with open(f"/proc/{pid}/net/{name}") as f:
                if n in f.read():
                    return True
        except FileNotFoundError:
            pass
    return False


def send_raw(ns, frames_hex, ifname="eth0"):
    """Sends Ethernet frames (hex strings) from a namespace with a packet socket."""
    script = ("import socket, sys\n"
              "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n"
              f"s.bind(({ifname!r}, 0))\n"
              "for h in sys.argv[1:]:\n"
              "    s.send(bytes.fromhex(h))\n")
    ns.run(["python3", "-c", script] + list(frames_hex))


def delta(before, after, key):
    return after[key] - before[key]


def macs_by_port(engine, net):
    return {m["mac"]: m["port"] for m in engine.network(net)["macs"]}


def port_ids(engine, net):
    return {p["id"] for p in engine.network(net)["ports"]}


def settle(seconds=0.2):
    time.sleep(seconds)


__all__ = ["guest", "ping_stats", "ping", "ping_ok", "mac_of", "delta", "macs_by_port", "port_ids", "settle", "listening", "send_raw",
           "run", "wait_for"]
