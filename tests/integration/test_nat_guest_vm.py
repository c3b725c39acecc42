"""A real booted guest on a NAT network: the Debian kernel with a busybox
initramfs (built at test time by the guest kit, guest/mkinitramfs.sh) under QEMU (TCG: KVM
does not work on these machines), its NIC a QEMU stream socket into vnet.
The guest gets its address by DHCP, resolves www.test through the DNS
forwarder and downloads a file from the internet namespace over the TCP
translator; it reports on its serial console, which the test reads."""

import os
import re
import subprocess
import threading
import time
import unittest

from guestkit import installed_kernel
from natlib import FIRST_LEASE, DNS, GATEWAY, HTTP_PORT, NatTestCase
from vnetlib import GUEST_KIT, Netns, have, run, wait_for

BOOT_BUDGET_S = 90


class NatGuestVmTest(NatTestCase):
    def setUp(self):
        super().setUp()
        for tool in ("qemu-system-x86_64", "busybox", "cpio", "modinfo"):
            if not have(tool):
                self.skipTest(f"{tool} not installed")
        self.kernel, self.kver = installed_kernel()
        if not self.kernel:
            self.skipTest("no /boot/vmlinuz-* with /lib/modules (package linux-image-amd64)")

    def boot(self, nic):
        body = os.urandom(2 << 20)
        self.build_lab(http_files={"file": body})
        self.nat_net("nat")
        initrd = os.path.join(self.tmp, f"initrd-{nic}.gz")
        run(["sh", os.path.join(GUEST_KIT, "mkinitramfs.sh"), initrd, self.kver, nic], timeout=60)

        sock = os.path.join(self.e.run_dir, "guest.sock")
        port = self.e.add_port("nat", f"stream,server=on,addr.type=unix,addr.path={sock}")
        wait_for(lambda: os.path.exists(sock), what="vnet stream socket")
        # QEMU's only network is the unix socket: it runs in a loopback-only namespace.
        box = Netns(self.cleanup, "nq")
        device = "virtio-net-pci" if nic == "virtio" else "e1000"
        qemu = box.popen(self.cleanup, [
            "qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-nodefaults", "-display", "none",
            "-serial", "stdio", "-no-reboot", "-kernel", self.kernel, "-initrd", initrd,
            "-append", f"console=ttyS0 quiet panic=-1 vnet_url=http://www.test:{HTTP_PORT}/file",
            "-netdev", f"stream,id=n0,server=off,addr.type=unix,addr.path={sock}",
            "-device", f"{device},netdev=n0,romfile="],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines = []

        def reader():
            for raw in qemu.stdout:
                lines.append(raw.decode(errors="replace").rstrip("\r\n"))
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        start = time.monotonic()
        try:
            wait_for(lambda: any("VNET-DONE" in l for l in lines) or qemu.poll() is not None,
                     timeout=BOOT_BUDGET_S, interval=0.2, what="the guest's VNET-DONE marker")
        except AssertionError:
            raise AssertionError(f"guest did not finish in {BOOT_BUDGET_S} s; console:\n" + "\n".join(lines[-60:]))
        elapsed = time.monotonic() - start
        try:
            qemu.wait(timeout=15)  # poweroff -f
        except subprocess.TimeoutExpired:
            pass
        t.join(timeout=2)
        console = "\n".join(lines)
        return body, console, elapsed, port

    def check(self, nic):
        body, console, elapsed, port = self.boot(nic)
        self.assertNotIn("VNET-INSMOD-FAILED", console, console)
        lease = re.search(r"VNET-LEASE ip=(\S+) mask=(\S*) router=(\S+) dns=(\S+)", console)
        self.assertIsNotNone(lease, f"no DHCP lease on the console:\n{console[-3000:]}")
        self.assertEqual(lease.groups()[0::2], (FIRST_LEASE, GATEWAY), console[-3000:])
        self.assertEqual(lease.group(4), DNS)
        got = re.search(r"VNET-SHA256 ([0-9a-f]{64}) (\d+)", console)
        self.assertIsNotNone(got, f"no download result on the console:\n{console[-3000:]}")
        import hashlib
        self.assertEqual(int(got.group(2)), len(body))
        self.assertEqual(got.group(1), hashlib.sha256(body).hexdigest(), "the guest's download differs")
        c = self.nat_counters()
        self.assertGreater(c["dhcp_acks"], 0, c)
        self.assertGreater(c["dns_answers"], 0, c)
        print(f"\n  {nic}: booted, leased, resolved and downloaded 2 MB in {elapsed:.1f} s")

    def test_virtio_guest_dhcp_dns_http(self):
        self.check("virtio")


if __name__ == "__main__":
    unittest.main()
