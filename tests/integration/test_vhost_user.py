"""vhost-user: a booted QEMU guest (the guest kit, TCG) whose virtio-net NIC
is served by vnet over shared memory (`-netdev vhost-user` with a memfd
memory backend), on a NAT network whose "internet" is a test namespace.
The guest must get its lease, resolve and download a file byte-exact, and
a QEMU killed mid-run must be replaceable by a new one on the same socket.
"""

import hashlib
import os
import re
import signal
import unittest

from guestkit import DHCP, GuestKit, probe
from natlib import HTTP_PORT, INET_ADDR, NatTestCase
from vnetlib import wait_for

BODY_SIZE = 3 << 20
DOWNLOAD = (f"timeout 60 wget -q -O /tmp/file http://www.test:{HTTP_PORT}/file && "
            "echo VNET-GOT $(sha256sum /tmp/file | cut -d' ' -f1) $(wc -c < /tmp/file)\n")


def vhost_user_netdev(sock, mac, qemu_listens=False):
    """QEMU options for a virtio-net NIC on vnet's vhost-user socket. Guest
    memory must be shareable: a memfd backend with share=on. vectors=0: under
    TCG, QEMU 7.2 segfaults starting a vhost device with MSI-X
    (msix_set_vector_notifiers, seen here); INTx avoids that path."""
    return ["-object", "memory-backend-memfd,id=mem,size=256M,share=on", "-machine", "memory-backend=mem",
            "-chardev", f"socket,id=c0,path={sock}" + (",server=on,wait=off" if qemu_listens else ""), "-netdev", "vhost-user,id=n0,chardev=c0",
            "-device", f"virtio-net-pci,netdev=n0,romfile=,vectors=0,mac={mac}"]


class VhostUserTest(NatTestCase):
    def setUp(self):
        super().setUp()
        self.body = os.urandom(BODY_SIZE)
        self.build_lab(http_files={"file": self.body})
        self.nat_net("nat")
        self.kit = GuestKit(self.tmp)
        self.sock = os.path.join(self.tmp, "vhost.sock")
        self.port = self.e.add_port("nat", f"vhost-user,path={self.sock}")
        wait_for(lambda: os.path.exists(self.sock), what="the vhost-user socket")

    def port_status(self):
        return self.e.port("nat", self.port)

    def check_download(self, results, guest):
        got = results.get("VNET-GOT", "")
        self.assertEqual(got.split(), [hashlib.sha256(self.body).hexdigest(), str(BODY_SIZE)], guest.console())

    def test_booted_guest_gets_a_lease_and_moves_files_byte_exact(self):
        self.assertEqual(self.port_status()["state"], "waiting for QEMU")
        # The upload: the guest sends 2 MiB of its own to nc in the internet namespace.
        received = os.path.join(self.tmp, "upload")
        with open(received, "wb") as sink:
            self.inet.popen(self.cleanup, ["nc", "-l", "-p", "5300"], stdout=sink)
        upload = ("head -c 2097152 /dev/urandom > /tmp/up\n"
                  "echo VNET-UP-SHA $(sha256sum /tmp/up | cut -d' ' -f1)\n"
                  f"timeout 30 nc {INET_ADDR} 5300 < /tmp/up\n")
        guest = self.kit.boot(self.cleanup, vhost_user_netdev(self.sock, "52:54:00:12:34:60"),
                              DHCP + DOWNLOAD + upload + probe("GW", "ping -c 2 -W 2 10.0.2.2"))
        results = guest.finish()
        with open(received, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), results.get("VNET-UP-SHA"), guest.console())
        self.assertEqual(results.get("VNET-ADDR"), "10.0.2.15", guest.console())
        self.check_download(results, guest)
        self.assertEqual(results.get("VNET-GW"), "ok", guest.console())
        c = self.port_status()["counters"]
        self.assertGreater(c["rx_frames"], 10, c)        # the guest's DHCP, DNS, request, ACKs
        self.assertGreater(c["tx_bytes"], BODY_SIZE, c)  # the file, into the guest's rings
        # ... as TSO super-frames spread over mergeable buffers: frames toward
        # the guest average more than a whole MTU-sized frame, ACKs included,
        # which frames cut to the MTU never could.
        self.assertGreater(c["tx_bytes"] / c["tx_frames"], 1514, c)
        self.assertEqual(c["drop_malformed"], 0, c)
        self.assertIn("vhost-user rings running", self.e.log())

    def test_a_killed_qemu_is_replaced_by_a_new_one(self):
        first = self.kit.boot(self.cleanup, vhost_user_netdev(self.sock, "52:54:00:12:34:61"),
                              DHCP + "echo VNET-UP\nsleep 600\n", name="first")
        wait_for(lambda: any(l.startswith("VNET-UP") for l in first.lines), timeout=120, interval=0.2,
                 what="the first guest's lease")
        self.assertEqual(self.port_status()["state"], "running")
        first.qemu.send_signal(signal.SIGKILL)
        first.qemu.wait(timeout=10)
        wait_for(lambda: self.port_status()["state"] == "waiting for QEMU", what="the port waits again")
        second = self.kit.boot(self.cleanup, vhost_user_netdev(self.sock, "52:54:00:12:34:62"),
                               DHCP + DOWNLOAD, name="second")
        results = second.finish()
        self.assertTrue(re.fullmatch(r"10\.0\.2\.1[5-9]", results.get("VNET-ADDR", "")), second.console())
        self.check_download(results, second)
        self.assertIn("vhost-user front end detached", self.e.log())

    def test_vnet_connects_to_a_listening_qemu(self):
        # server=off: QEMU owns the socket; vnet connects (and retries until
        # QEMU is there).
        sock = os.path.join(self.tmp, "qemu-vhost.sock")
        port = self.e.add_port("nat", f"vhost-user,path={sock},server=off")
        self.assertEqual(self.e.port("nat", port)["state"], "connecting")
        guest = self.kit.boot(self.cleanup, vhost_user_netdev(sock, "52:54:00:12:34:63", qemu_listens=True),
                              DHCP + DOWNLOAD)
        results = guest.finish()
        self.assertTrue(re.fullmatch(r"10\.0\.2\.1[5-9]", results.get("VNET-ADDR", "")), guest.console())
        self.check_download(results, guest)


if __name__ == "__main__":
    unittest.main()
