"""Booted guests for the integration tests: the project's guest kit (guest/)
under QEMU with TCG, each guest running a shell script passed on its kernel
command line and reporting VNET-* lines on its serial console. Guests of one
test boot in parallel."""

import base64
import glob
import os
import subprocess
import threading

from vnetlib import GUEST_KIT, Netns, run, wait_for

BOOT_BUDGET_S = 120


def installed_kernel():
    """(vmlinuz path, version) of an installed Debian kernel with its modules."""
    for path in sorted(glob.glob("/boot/vmlinuz-*"), reverse=True):
        kver = os.path.basename(path)[len("vmlinuz-"):]
        if os.path.isdir(f"/lib/modules/{kver}"):
            return path, kver
    return None, None


class BootedGuest:
    """One QEMU guest; `netdev` is QEMU's -netdev/-device options (from
    `vnet attach`); `script` runs in the guest after eth0 is up."""

    def __init__(self, cleanup, kernel, initrd, netdev, script, name="guest", box=None):
        self.name = name
        self.lines = []
        # QEMU's only network is the socket: a loopback-only namespace,
        # unless the test names one (a TAP QEMU opens lives there).
        self.box = box = box or Netns(cleanup, "nq")
        encoded = base64.b64encode(script.encode()).decode()
        self.qemu = box.popen(cleanup, [
            "qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-nodefaults", "-display", "none",
            "-serial", "stdio", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
            "-append", f"console=ttyS0 quiet panic=-1 vnet_script={encoded}"] + netdev,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.qemu.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\r\n"))

    def finish(self):
        """Waits for VNET-DONE; returns {marker: rest of its line} of the VNET-* lines."""
        try:
            wait_for(lambda: any("VNET-DONE" in l for l in self.lines) or self.qemu.poll() is not None,
                     timeout=BOOT_BUDGET_S, interval=0.2, what=f"{self.name}'s VNET-DONE marker")
        except AssertionError:
            raise AssertionError(f"{self.name} did not finish in {BOOT_BUDGET_S} s; console:\n"
                                 + "\n".join(self.lines[-40:]))
        try:
            self.qemu.wait(timeout=15)  # poweroff -f
        except subprocess.TimeoutExpired:
            pass
        self.reader.join(timeout=2)
        results = {}
        for line in self.lines:
            if line.startswith("VNET-"):
                marker, _, rest = line.partition(" ")
                results[marker] = rest
        return results

    def console(self):
        return "\n".join(self.lines[-40:])


class GuestKit:
    """Builds the kit's initramfs once per test (virtio NIC)."""

    def __init__(self, tmp):
        self.kernel, kver = installed_kernel()
        assert self.kernel, "linux-image-amd64 (in .ci/packages.txt) provides /boot/vmlinuz-*"
        self.initrd = os.path.join(tmp, "initrd-kit.gz")
        run(["sh", os.path.join(GUEST_KIT, "mkinitramfs.sh"), self.initrd, kver, "virtio"], timeout=120)

    def boot(self, cleanup, netdev, script, name="guest", box=None):
        return BootedGuest(cleanup, self.kernel, self.initrd, netdev, script, name, box)


# Guest script pieces: DHCP with the kit's udhcpc hook (prints VNET-LEASE),
# then a probe that prints VNET-<NAME> ok|fail.
DHCP = "udhcpc -i eth0 -n -q -t 5 -T 2 -O mtu > /dev/null 2>&1 || echo VNET-DHCP-FAILED\n" \
       "echo VNET-ADDR $(ip -4 -o addr show dev eth0 | sed -n 's/.*inet \\([^/]*\\).*/\\1/p')\n"


def probe(name, command):
    return f"if {command} > /dev/null 2>&1; then echo VNET-{name} ok; else echo VNET-{name} fail; fi\n"
