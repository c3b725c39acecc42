"""Privilege separation: started as root with --user, the engine that parses
guest traffic runs as that user with no capabilities, no_new_privs and the
seccomp filter, while a root helper opens what the engine may not (TAPs in
other namespaces, sockets and capture files in root's run dir) and refuses
everything outside its rules."""

import os
import pwd
import socket
import stat
import subprocess
import tempfile
import time

from natlib import GATEWAY, INET_ADDR, ECHO_PORT, NatTestCase, PY
from vnetlib import VNET, Engine, Netns, VnetTestCase, run, wait_for

USER = "nobody"
NOBODY = pwd.getpwnam(USER)


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def auto_user_uid():
    try:
        return pwd.getpwnam("vnet").pw_uid
    except KeyError:
        return NOBODY.pw_uid


def children(pid):
    out = run(["ps", "-o", "pid=,user=,comm=", "--ppid", str(pid)], check=False).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


class IsolatedEngineMixin:
    extra_flags = ("--user", USER)

    def engine(self, config=None, netns=None, extra=()):
        e = Engine(self.cleanup, config, extra=list(self.extra_flags) + list(extra), netns=netns)
        self.engines.append(e)
        return e

    def assert_unprivileged(self, e):
        s = proc_status(e.pid)
        self.assertEqual(s["Uid"].split(), [str(NOBODY.pw_uid)] * 4)
        self.assertEqual(s["Gid"].split(), [str(NOBODY.pw_gid)] * 4)
        self.assertEqual(s["Groups"], "")
        self.assertEqual(s["CapEff"], "0000000000000000")
        self.assertEqual(s["CapPrm"], "0000000000000000")
        self.assertEqual(s["CapBnd"], "0000000000000000")
        self.assertEqual(s["NoNewPrivs"], "1")
        self.assertEqual(s["Seccomp"], "2")


class IsolationTest(IsolatedEngineMixin, VnetTestCase):

    def test_engine_runs_unprivileged_and_says_so(self):
        e = self.engine()
        self.assert_unprivileged(e)
        engine = e.status()["engine"]
        self.assertEqual((engine["uid"], engine["cap_eff"], engine["no_new_privs"], engine["seccomp"],
                          engine["privileged_helper"]), (NOBODY.pw_uid, "0000000000000000", 1, "filter", True))
        self.assertIn(f"engine: uid {NOBODY.pw_uid}", e.vnet("status"))
        helpers = children(e.pid)
        self.assertEqual([(h[1], h[2]) for h in helpers], [("root", "vnet-privsep")])
        helper = proc_status(int(helpers[0][0]))
        self.assertEqual((helper["NoNewPrivs"], helper["Seccomp"]), ("1", "2"))
        # The helper keeps only NET_ADMIN (12), NET_RAW (13: a bridged uplink's packet socket), SYS_ADMIN (21),
        # NET_BIND_SERVICE (10), DAC_OVERRIDE (1), CHOWN (0).
        self.assertEqual(int(helper["CapEff"], 16), (1 << 12) | (1 << 13) | (1 << 21) | (1 << 10) | (1 << 1) | 1)

    def test_tap_guests_in_other_namespaces_through_a_switch(self):
        a = Netns(self.cleanup)
        config = f'[[network]]\nname = "lab"\n  [[network.port]]\n  spec = "tap,ifname=eth0,netns={a.name}"\n'
        e = self.engine(config)  # one TAP opened before the drop, one after it through the helper
        self.assert_unprivileged(e)
        a.configure("eth0", "192.0.2.1/24")
        b, _ = e.add_tap_guest(self.cleanup, "lab", "192.0.2.2/24")
        res = a.ping("192.0.2.2", count=3, interval=0.2)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        res = b.ping("192.0.2.1", count=3, interval=0.2)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assert_unprivileged(e)

    def test_unix_listener_and_capture_file_in_the_root_run_dir(self):
        e = self.engine()
        e.vnet("net", "add", "lab")
        self.assertEqual(stat.S_IMODE(os.stat(e.run_dir).st_mode), 0o700)
        sock_path = os.path.join(e.run_dir, "extra.sock")
        pcap_path = os.path.join(e.run_dir, "lab.pcap")
        listener = e.add_port("lab", f"stream,server=on,addr.type=unix,addr.path={sock_path}")
        e.add_port("lab", f"pcap,file={pcap_path}")
        self.assertTrue(stat.S_ISSOCK(os.lstat(sock_path).st_mode))
        self.assertEqual(os.stat(pcap_path).st_uid, 0)
        # A peer attached to the helper-bound listener reaches the network:
        # its frame shows in the helper-created capture file.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
            peer.connect(sock_path)
            wait_for(lambda: any(p.get("parent") == listener for p in e.network("lab")["ports"]),
                     what="the connection accepted")
            frame = bytes.fromhex("ffffffffffff" "525400000001" "88b5") + b"isolation-test".ljust(46, b".")
            peer.sendall(len(frame).to_bytes(4, "big") + frame)
            wait_for(lambda: os.path.getsize(pcap_path) > 24, what="the frame captured")
        with open(pcap_path, "rb") as f:
            self.assertIn(b"isolation-test", f.read())

    def test_group_applies_to_sockets_the_helper_binds(self):
        import grp
        group = grp.getgrnam("daemon")
        e = self.engine(extra=("--group", "daemon"))
        e.vnet("net", "add", "lab")
        path = os.path.join(e.run_dir, "shared.sock")
        e.add_port("lab", f"stream,server=on,addr.type=unix,addr.path={path}")
        st = os.lstat(path)
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_gid), (0o660, group.gr_gid))

    def test_helper_refuses_paths_outside_its_rules(self):
        e = self.engine()
        e.vnet("net", "add", "lab")
        outside = os.path.join(self.tmp, "not-allowed.pcap")  # root's 0700 scratch dir, not --allow-path
        res = e.vnet("port", "add", "lab", f"pcap,file={outside}", check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("--allow-path", res.stderr)
        self.assertFalse(os.path.exists(outside))
        # A symlink in the run dir does not lead the helper elsewhere.
        target = os.path.join(self.tmp, "target")
        with open(target, "w") as f:
            f.write("keep")
        os.symlink(target, os.path.join(e.run_dir, "link.pcap"))
        res = e.vnet("port", "add", "lab", f"pcap,file={os.path.join(e.run_dir, 'link.pcap')}", check=False)
        self.assertNotEqual(res.returncode, 0)
        with open(target) as f:
            self.assertEqual(f.read(), "keep")
        self.assertIn("privileged helper: refused", e.log())
        self.assert_unprivileged(e)

    def test_allow_path_serves_root_directories(self):
        e = self.engine(extra=("--allow-path", self.tmp))
        e.vnet("net", "add", "lab")
        pcap = os.path.join(self.tmp, "lab.pcap")
        e.add_port("lab", f"pcap,file={pcap}")
        self.assertTrue(os.path.exists(pcap))
        # A QEMU-style stream server in root's 0700 directory: the helper connects.
        path = os.path.join(self.tmp, "qemu.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(path)
            server.listen(1)
            server.settimeout(10)
            e.add_port("lab", f"stream,server=off,addr.type=unix,addr.path={path}")
            conn, _ = server.accept()
            conn.close()

    def test_low_ports_only_when_root_allowed_them(self):
        ns = Netns(self.cleanup)  # its own loopback: no clash with the host's port 80
        e = self.engine(netns=ns, extra=("--allow-port", "80"))
        e.vnet("net", "add", "lab")
        port = e.add_port("lab", "socket,listen=127.0.0.1:80")
        self.assertEqual(e.port("lab", port)["peer"], "127.0.0.1:80")
        res = ns.run([PY, "-c", "import socket; s = socket.create_connection(('127.0.0.1', 80), timeout=5); "
                      "print('connected')"])
        self.assertIn("connected", res.stdout)
        res = e.vnet("port", "add", "lab", "socket,listen=127.0.0.1:81", check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("--allow-port 81", res.stderr)
        self.assert_unprivileged(e)

    def test_down_cleans_the_run_dir_and_the_helper_exits(self):
        e = self.engine()
        helper = int(children(e.pid)[0][0])
        e.vnet("down")
        wait_for(lambda: not e.alive(), what="engine gone")
        wait_for(lambda: not os.path.exists(f"/proc/{helper}") or proc_status(helper)["State"].startswith("Z"),
                 what="helper gone")
        # The log and the saved definitions (RUN_DIR/state with a run dir of one's own) stay.
        self.assertEqual(sorted(os.listdir(e.run_dir)), ["state", "vnet.log"])
        # And the same run dir starts again.
        res = run([VNET, "--run-dir", e.run_dir, "up", "--user", USER], timeout=30)
        with open(os.path.join(e.run_dir, "vnet.pid")) as f:
            e.pid = int(f.read())
        self.assert_unprivileged(e)

    def test_user_auto_picks_vnet_or_nobody(self):
        e = Engine(self.cleanup, extra=["--user", "auto"])
        self.engines.append(e)
        self.assertEqual(proc_status(e.pid)["Uid"].split()[0], str(auto_user_uid()))

    def test_root_engine_drops_by_default(self):
        e = Engine(self.cleanup)  # no --user at all
        self.engines.append(e)
        s = proc_status(e.pid)
        self.assertEqual(s["Uid"].split(), [str(auto_user_uid())] * 4)
        self.assertEqual((s["CapEff"], s["NoNewPrivs"], s["Seccomp"]), ("0000000000000000", "1", "2"))
        self.assertEqual([c[2] for c in children(e.pid)], ["vnet-privsep"])
        self.assertEqual(e.status()["engine"]["uid"], auto_user_uid())

    def test_user_root_keeps_root_for_debugging_with_the_filter(self):
        e = Engine(self.cleanup, extra=["--user", "root"])
        self.engines.append(e)
        s = proc_status(e.pid)
        self.assertEqual(s["Uid"].split()[0], "0")
        self.assertEqual((s["NoNewPrivs"], s["Seccomp"]), ("1", "2"))
        self.assertEqual(children(e.pid), [])

    def test_started_without_root_same_filter_no_helper(self):
        run_dir = tempfile.mkdtemp(prefix="vnet-nobody-")
        self.cleanup.add(lambda: run(["rm", "-rf", run_dir], check=False))
        os.chown(run_dir, NOBODY.pw_uid, NOBODY.pw_gid)
        as_nobody = ["setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}", "--clear-groups",
                     "--inh-caps=-all", VNET, "--run-dir", run_dir]
        run(as_nobody + ["up"], timeout=30)
        with open(os.path.join(run_dir, "vnet.pid")) as f:
            pid = int(f.read())
        self.cleanup.add(lambda: run(as_nobody + ["down"], check=False))
        s = proc_status(pid)
        self.assertEqual((s["Uid"].split()[0], s["CapEff"], s["NoNewPrivs"], s["Seccomp"]),
                         (str(NOBODY.pw_uid), "0000000000000000", "1", "2"))
        self.assertEqual(children(pid), [])
        out = run(as_nobody + ["status"]).stdout
        self.assertIn("privileged helper no", out)


class IsolatedNatTest(IsolatedEngineMixin, NatTestCase):

    def test_nat_guest_on_a_tap_gets_a_lease_and_reaches_out(self):
        self.build_lab()
        self.assert_unprivileged(self.e)
        self.nat_net()
        g = self.guest()  # a runtime TAP in another namespace, through the helper
        self.assertTrue(g.lease["ip"].startswith("10.0.2."))
        res = g.ns.ping(GATEWAY, count=2, interval=0.2)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        # ICMP through the engine's ping socket (nobody's gid is in ping_group_range).
        res = g.ns.ping(INET_ADDR, count=2, interval=0.2)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        # TCP through a host socket the unprivileged engine opened.
        out = g.py("import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10); "
                   "s.sendall(b'isolated'); print(s.recv(100).decode())", INET_ADDR, str(ECHO_PORT)).stdout
        self.assertEqual(out.strip(), "isolated")
        self.assert_unprivileged(self.e)


if __name__ == "__main__":
    import unittest
    unittest.main()
