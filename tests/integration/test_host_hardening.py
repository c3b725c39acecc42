"""The host side of vnet under a hostile local user and resource exhaustion:
run dir ownership, symlinked files, socket modes under any umask, who may use
the control socket, control clients that never read, fd exhaustion, and the
small safety defaults (gateway port, loopback listeners).

The "other user" is `nobody` (commands run through setpriv). Everything the
tests create lives in their own temporary directories and namespaces.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from vnetlib import VNET, Engine, VnetTestCase, cpu_seconds, run, wait_for
from vnet_it import guest, ping_stats

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]

# Connects to a unix socket as the calling user and sends a status request:
# prints "refused" (no connect), "closed" (no answer) or "answered".
PROBE = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("refused", e.errno); sys.exit()
try:
    s.sendall(b'{"cmd":"status"}\n')
    print("answered" if s.recv(65536) else "closed")
except OSError:
    print("closed")
"""


def as_nobody(args, **kw):
    return run(AS_NOBODY + list(args), check=False, **kw)


def probe_as_nobody(path):
    return as_nobody(["python3", "-c", PROBE, path]).stdout.split()[0]


def mode_of(path):
    return os.lstat(path).st_mode & 0o7777


class RunDirTest(VnetTestCase):
    def fresh_dir(self, mode=0o700):
        os.chmod(self.tmp, 0o711)  # nobody may traverse it to reach what the test opens up
        d = tempfile.mkdtemp(prefix="vnet-rd-", dir=self.tmp)
        os.chmod(d, mode)
        return d

    def up(self, run_dir, *extra, umask=None):
        prefix = ["sh", "-c", f'umask {umask:03o}; exec "$@"', "sh"] if umask is not None else []
        res = run(prefix + [VNET, "--run-dir", run_dir, "up"] + list(extra), check=False, timeout=30)
        pid_file = os.path.join(run_dir, "vnet.pid")
        if res.returncode == 0 and os.path.isfile(pid_file) and not os.path.islink(pid_file):
            e = Engine.__new__(Engine)
            e.netns, e.run_dir = None, run_dir
            with open(pid_file) as f:
                e.pid = int(f.read())
            self.cleanup.add(e.stop)
            self.engines.append(e)
            return res, e
        return res, None

    def test_run_dir_of_another_user_or_open_mode_is_refused(self):
        theirs = self.fresh_dir()
        os.chown(theirs, NOBODY, NOBODY)
        res, engine = self.up(theirs)
        self.assertIsNone(engine, "an engine started in another user's run dir")
        self.assertNotEqual(res.returncode, 0)
        self.assertIn(f"run dir {theirs} belongs to uid {NOBODY}", res.stderr)
        self.assertIn("--run-dir", res.stderr)
        self.assertEqual(os.listdir(theirs), [], "nothing was created in it")

        open_dir = self.fresh_dir(0o755)
        res, engine = self.up(open_dir)
        self.assertIsNone(engine)
        self.assertIn(f"chmod 700 {open_dir}", res.stderr)

    def test_symlinked_log_or_pid_file_is_refused_and_target_untouched(self):
        victim = os.path.join(self.tmp, "victim")
        for name in ("vnet.log", "vnet.pid"):
            with open(victim, "w") as f:
                f.write("precious\n")
            os.chmod(victim, 0o644)
            run_dir = self.fresh_dir()
            os.symlink(victim, os.path.join(run_dir, name))
            res, engine = self.up(run_dir)
            self.assertIsNone(engine, f"started with {name} a symlink")
            self.assertNotEqual(res.returncode, 0, name)
            self.assertIn(os.path.join(run_dir, name), res.stderr)
            with open(victim) as f:
                self.assertEqual(f.read(), "precious\n", f"{name}: the symlink's target was written")
            self.assertEqual(mode_of(victim), 0o644)

    def test_no_predictable_tmp_fallback(self):
        env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "VNET_RUN_DIR")}
        res = run(AS_NOBODY + [VNET, "status"], check=False, env=env)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("XDG_RUNTIME_DIR", res.stderr)
        self.assertIn("--run-dir", res.stderr)
        self.assertNotIn("/tmp", res.stderr)

    def test_umask_000_still_gives_owner_only_files_and_sockets(self):
        run_dir = self.fresh_dir()
        res, engine = self.up(run_dir, umask=0)
        self.assertEqual(res.returncode, 0, res.stderr)
        extra = os.path.join(run_dir, "extra.sock")
        engine.vnet("port", "add", "default", f"stream,server=on,addr.type=unix,addr.path={extra}")
        for name in ("control.sock", "default.sock", "extra.sock", "vnet.pid", "vnet.log"):
            self.assertEqual(mode_of(os.path.join(run_dir, name)), 0o600, name)
        # Even with the run dir opened up, another user cannot attach a guest.
        os.chmod(run_dir, 0o711)
        self.assertEqual(probe_as_nobody(os.path.join(run_dir, "default.sock")), "refused")

    def test_group_flag_opens_guest_sockets_to_that_group_only(self):
        run_dir = self.fresh_dir()
        res, engine = self.up(run_dir, "--group", "nogroup", umask=0o022)
        self.assertEqual(res.returncode, 0, res.stderr)
        data = os.path.join(run_dir, "default.sock")
        self.assertEqual(mode_of(data), 0o660)
        self.assertEqual(os.lstat(data).st_gid, NOBODY)
        self.assertEqual(mode_of(os.path.join(run_dir, "control.sock")), 0o600, "control stays owner-only")
        os.chmod(run_dir, 0o711)
        # nobody's group is nogroup: it may attach a guest (the stream port
        # answers no JSON, so the probe sees the connection closed or idle).
        self.assertNotEqual(probe_as_nobody(data), "refused")
        self.assertEqual(probe_as_nobody(os.path.join(run_dir, "control.sock")), "refused")


class ControlPeerTest(VnetTestCase):
    def test_other_user_is_refused_even_if_the_socket_is_opened_up(self):
        e = self.engine()
        control = os.path.join(e.run_dir, "control.sock")
        # Simulate a mistake (or another tool) that opens the files up: the
        # engine itself still checks who is calling.
        os.chmod(e.run_dir, 0o711)
        os.chmod(control, 0o666)
        self.assertEqual(probe_as_nobody(control), "closed", "a non-owner got an answer")
        host = e.status()["host"]
        self.assertEqual(host["control_refused"], 1)
        self.assertIn("refused a connection from uid 65534", e.log())
        self.assertEqual(e.status()["networks"][0]["name"], "default", "the owner is still served")

    def test_unknown_request_fields_are_errors(self):
        e = self.engine()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.cleanup.add(s.close)
        s.connect(os.path.join(e.run_dir, "control.sock"))
        s.sendall(b'{"cmd":"net_add","name":"typo","mode":"nat","subnett":"10.9.0.0/24"}\n')
        reply = json.loads(s.makefile().readline())
        self.assertFalse(reply["ok"])
        self.assertIn("unknown field 'subnett'", reply["error"])
        self.assertNotIn("typo", [n["name"] for n in e.status()["networks"]])


class ControlBackpressureTest(VnetTestCase):
    def test_unread_control_client_does_not_delay_pings(self):
        e = self.engine()
        ns, _ = guest(e, self.cleanup, "default", "10.0.2.15/24")
        self.assertEqual(ping_stats(ns.ping("10.0.2.2", count=2))[1], 2, "baseline ping")
        # 200 status requests whose replies (a few KB each, far more than a
        # unix socket buffers) are never read.
        hog = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.cleanup.add(hog.close)
        hog.connect(os.path.join(e.run_dir, "control.sock"))
        hog.sendall(b'{"cmd":"status"}\n' * 200)
        res = ns.ping("10.0.2.2", count=10, interval=0.2, timeout=60)
        sent, received, _ = ping_stats(res)
        self.assertEqual(received, sent, res.stdout)
        worst = max(float(x) for x in re.findall(r"time=([\d.]+) ms", res.stdout))
        self.assertLess(worst, 100.0, res.stdout)
        # The engine still answers, and counts clients it gave up on.
        self.assertIn("control_over_cap", e.status()["host"])


class FdExhaustionTest(VnetTestCase):
    def test_listener_at_emfile_backs_off_and_status_answers(self):
        run_dir = tempfile.mkdtemp(prefix="vnet-fd-", dir=self.tmp)
        run(["prlimit", "--nofile=64:64", VNET, "--run-dir", run_dir, "up"], timeout=30)
        e = Engine.__new__(Engine)
        e.netns, e.run_dir = None, run_dir
        with open(os.path.join(run_dir, "vnet.pid")) as f:
            e.pid = int(f.read())
        self.cleanup.add(e.stop)
        self.engines.append(e)

        conns = []
        self.cleanup.add(lambda: [c.close() for c in conns])
        for _ in range(100):  # more than the engine has fds; the rest wait in the backlog
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(os.path.join(run_dir, "default.sock"))
            except (BlockingIOError, OSError):
                pass
            conns.append(c)
        time.sleep(1)
        before = cpu_seconds(e.pid)
        time.sleep(2)
        used = cpu_seconds(e.pid) - before
        self.assertLess(used, 0.2, f"engine used {used:.2f} s of CPU in 2 s at EMFILE")
        self.assertLess(os.path.getsize(os.path.join(run_dir, "vnet.log")), 100 * 1024)
        st = e.status()  # the control socket still answers with every fd taken
        self.assertGreater(len(st["networks"][0]["ports"]), 20)
        self.assertIn("not accepting for", e.log())
        self.assertEqual(st["host"]["nofile_limit"], 64, "the fd limit is reported")
        self.assertIn("host: fd limit 64", e.vnet("status"))


class SmallDefaultsTest(VnetTestCase):
    def test_nat_gateway_port_cannot_be_deleted(self):
        e = self.engine()
        gw = next(p for p in e.network("default")["ports"] if p["kind"] == "nat")
        res = e.vnet("port", "del", "default", str(gw["id"]), check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("is the NAT gateway", res.stderr)
        self.assertIn("nat", [p["kind"] for p in e.network("default")["ports"]])

    def test_inet_listener_without_host_is_loopback_only(self):
        e = self.engine()
        pid = e.add_port("default", "socket,listen=:0")
        peer = e.port("default", pid)["peer"]
        self.assertTrue(peer.startswith("127.0.0.1:"), peer)
        pid = e.add_port("default", "socket,listen=0.0.0.0:0")
        self.assertTrue(e.port("default", pid)["peer"].startswith("0.0.0.0:"))
