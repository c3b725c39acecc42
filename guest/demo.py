#!/usr/bin/env python3
"""vnet demo: boots a tiny real guest on a running vnet network and shows it
work: a DHCP lease, a name resolved through vnet's DNS forwarder, a ping to
the gateway, a page fetched from the host's loopback through the gateway
address. One progress line per step; exit status 0 only if every step
passed.

The guest is the project's guest kit (this directory): the installed Debian
kernel and an initramfs of busybox-static built by mkinitramfs.sh, under
qemu-system-x86_64 (KVM when /dev/kvm can be opened, else TCG), its NIC a
`-netdev stream` into the network's listener, with the options and MAC that
`vnet attach` hands out. `vnet demo` runs this script; it needs root only if
the engine's sockets need it.
"""

import argparse
import base64
import glob
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

KIT = os.path.dirname(os.path.abspath(__file__))
BOOT_TIMEOUT_S = 180
PACKAGES = {"qemu-system-x86_64": "qemu-system-x86", "busybox": "busybox-static", "cpio": "cpio",
            "modinfo": "kmod"}

# Runs inside the guest (busybox sh). PORT and NAME are filled in; every
# result is a VNET-* line on the serial console.
GUEST_SCRIPT = r"""
if udhcpc -i eth0 -n -q -t 5 -T 2 -O mtu > /dev/null 2>&1; then
  echo "VNET-STEP lease $(ip -4 -o addr show dev eth0 | sed -n 's/.*inet \([^ ]*\).*/\1/p')"
else
  echo "VNET-FAIL lease no DHCP answer"; exit 0
fi
gw=$(ip route | sed -n 's/^default via \([^ ]*\).*/\1/p')
if ping -c 2 -W 3 "$gw" > /dev/null 2>&1; then
  echo "VNET-STEP ping $gw answers"
else
  echo "VNET-FAIL ping $gw does not answer"
fi
addr=$(nslookup NAME 2>/dev/null | sed -n '/^Name:/,$ s/^Address[^:]*: *\([0-9a-f.:]*\).*/\1/p' | head -n 1)
if [ -n "$addr" ]; then
  echo "VNET-STEP resolve NAME is $addr"
else
  echo "VNET-FAIL resolve no answer for NAME"
fi
if timeout 15 wget -q -O /tmp/page "http://$gw:PORT/" 2> /tmp/wget.err; then  # (-T crashes busybox 1.35)
  echo "VNET-STEP fetch $(head -c 80 /tmp/page)"
else
  echo "VNET-FAIL fetch http://$gw:PORT/: $(head -c 120 /tmp/wget.err | tr '\n' ' ')"
fi
"""

STEPS = {
    "lease": "got a DHCP lease",
    "ping": "pinged the gateway",
    "resolve": "resolved a name through vnet's DNS",
    "fetch": "fetched a page from the host's loopback through the gateway",
}


def say(text):
    print(f"vnet demo: {text}", flush=True)


def fail(text):
    say(text)
    sys.exit(1)


def installed_kernel():
    for path in sorted(glob.glob("/boot/vmlinuz-*"), reverse=True):
        kver = os.path.basename(path)[len("vmlinuz-"):]
        if os.path.isdir(f"/lib/modules/{kver}") and os.access(path, os.R_OK):
            return path, kver
    return None, None


def accelerator(choice):
    if choice != "auto":
        return choice
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return "kvm"
    except OSError:
        return "tcg"


def free_loopback_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_tools():
    missing = [pkg for tool, pkg in PACKAGES.items() if not shutil.which(tool)]
    if missing:
        fail("missing programs; install them with: apt-get install -y " + " ".join(sorted(set(missing))))
    kernel, kver = installed_kernel()
    if not kernel:
        fail("no readable /boot/vmlinuz-* with its /lib/modules: install one with: apt-get install -y linux-image-amd64")
    return kernel, kver


def attach_options(vnet, net):
    res = subprocess.run(vnet + ["attach", net], capture_output=True, text=True, timeout=20)
    if res.returncode != 0:
        fail((res.stderr.strip() or "vnet attach failed") +
             ("" if "not running" not in res.stderr else "\n  start it first: vnet up"))
    return shlex.split(res.stdout.strip().splitlines()[0])


def main():
    ap = argparse.ArgumentParser(prog="vnet demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--vnet", default="vnet", help=argparse.SUPPRESS)
    ap.add_argument("--run-dir", help=argparse.SUPPRESS)
    ap.add_argument("--net", default="default", help="the network to join (default: default)")
    ap.add_argument("--resolve", default="debian.org", metavar="NAME",
                    help="the name the guest resolves through vnet's DNS forwarder (default: debian.org)")
    ap.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"),
                    help="QEMU accelerator (default: KVM if /dev/kvm can be opened, else TCG)")
    opts = ap.parse_args()
    vnet = [opts.vnet] + (["--run-dir", opts.run_dir] if opts.run_dir else [])

    kernel, kver = check_tools()
    netdev = attach_options(vnet, opts.net)
    accel = accelerator(opts.accel)
    with tempfile.TemporaryDirectory(prefix="vnet-demo-") as tmp:
        say(f"building the guest: Debian kernel {kver} and a busybox initramfs (guest kit: {KIT})")
        initrd = os.path.join(tmp, "initrd.gz")
        res = subprocess.run(["sh", os.path.join(KIT, "mkinitramfs.sh"), initrd, kver, "virtio"],
                             capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            fail("building the initramfs failed: " + res.stderr.strip())
        www = os.path.join(tmp, "www")
        os.mkdir(www)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("hello from the host, through vnet\n")
        port = free_loopback_port()
        httpd = subprocess.Popen(["busybox", "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", www],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            say(f"serving a page on the host at http://127.0.0.1:{port}/")
            script = GUEST_SCRIPT.replace("PORT", str(port)).replace("NAME", opts.resolve)
            encoded = base64.b64encode(script.encode()).decode()
            mac = next((o.split("mac=")[1].split(",")[0] for o in netdev if "mac=" in o), "?")
            say(f"booting it on network '{opts.net}' (QEMU, {accel.upper()}, MAC {mac})")
            qemu = subprocess.Popen(
                ["qemu-system-x86_64", "-accel", accel, "-m", "256", "-nodefaults", "-display", "none",
                 "-serial", "stdio", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
                 "-append", f"console=ttyS0 quiet panic=-1 vnet_script={encoded}"]
                + [o.replace("virtio-net-pci,", "virtio-net-pci,romfile=,") if o.startswith("virtio-net-pci") else o
                   for o in netdev],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
            return watch(qemu)
        finally:
            httpd.terminate()
            httpd.wait(timeout=5)


def watch(qemu):
    start = time.monotonic()
    # A guest that hangs without a word still ends: QEMU is killed.
    deadline = threading.Timer(BOOT_TIMEOUT_S, qemu.kill)
    deadline.start()
    passed, failed = set(), []
    done = False
    for line in qemu.stdout:
        line = line.strip()
        if line.startswith("VNET-BOOTED"):
            say(f"guest booted in {time.monotonic() - start:.1f} s")
        elif line.startswith("VNET-STEP "):
            _, step, detail = (line.split(" ", 2) + [""])[:3]
            passed.add(step)
            say(f"ok   {STEPS.get(step, step)}: {detail}")
        elif line.startswith("VNET-FAIL "):
            _, step, detail = (line.split(" ", 2) + [""])[:3]
            failed.append(step)
            say(f"FAIL {STEPS.get(step, step)}: {detail}")
        elif line.startswith("VNET-DONE"):
            done = True
    deadline.cancel()
    try:
        qemu.wait(timeout=20)
    except subprocess.TimeoutExpired:
        qemu.kill()
        qemu.wait()
    if not done:
        fail(f"the guest did not finish within {BOOT_TIMEOUT_S} s (QEMU exit status {qemu.returncode})")
    missing = [s for s in STEPS if s not in passed]
    if missing:
        say(f"{len(missing)} of {len(STEPS)} steps failed: {', '.join(missing)} (see `vnet status` for counters)")
        return 1
    say(f"all {len(STEPS)} steps passed in {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
