"""Operating vnet: definitions and DHCP leases that survive `vnet down; vnet
up`, a damaged state file, readiness notification to a service manager, a
clean and quick SIGTERM under load, socket activation of the control socket
with log lines for the journal, and Prometheus metrics."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # a python3 other than Debian's runs the tests: use Debian's python3-prometheus-client
    sys.path.append("/usr/lib/python3/dist-packages")
    from prometheus_client.parser import text_string_to_metric_families

from natlib import INET_ADDR, NatTestCase, host_connect, listening
from vnetlib import VNET, Netns, run, wait_for

MAC_A = "52:54:00:0a:00:0a"
MAC_R = "52:54:00:0a:00:50"
RESERVED = "10.0.2.50"

GUEST_ECHO_PY = r"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8022)); s.listen(4)
while True:
    c, _ = s.accept()
    data = c.recv(100)
    c.sendall(b"echo:" + data); c.close()
"""


class OpsTest(NatTestCase):
    def guest_with_mac(self, mac, ns=None, requested=None):
        """A guest namespace on network nat whose eth0 has this MAC; DHCP, asking for `requested`."""
        if ns is None:
            ns = Netns(self.cleanup, "ng")
            ns.run(["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"])
            self.e.add_port("nat", f"tap,ifname=eth0,netns={ns.name}")
        ns.run(["ip", "link", "set", "eth0", "down"])
        ns.run(["ip", "link", "set", "eth0", "address", mac])
        ns.run(["ip", "link", "set", "eth0", "up"])
        from natlib import Guest
        g = Guest(ns, None, None)
        g.lease = self.dhcp(g)
        return g

    def test_restart_keeps_networks_forwards_reservations_and_leases(self):
        e = self.build_lab()
        self.nat_net("nat", "--dhcp-reserve", f"{MAC_R}={RESERVED}")
        e.vnet("net", "add", "scratch", "--transient")
        listener = os.path.join(e.run_dir, "extra.sock")
        e.add_port("nat", f"stream,server=on,addr.type=unix,addr.path={listener}")
        fwd = e.vnet("pf", "add", "nat", "tcp:127.0.0.1:2222-:8022").strip()
        a = self.guest_with_mac(MAC_A)
        r = self.guest_with_mac(MAC_R)
        self.assertEqual((a.ip, r.ip), ("10.0.2.15", RESERVED))

        e.restart()
        nets = {n["name"]: n for n in json.loads(e.vnet("net", "list", "--json"))}
        self.assertEqual(sorted(nets), ["default", "nat"], "runtime networks back, the transient one gone")
        self.assertEqual([f["name"] for f in json.loads(e.vnet("pf", "list", "nat", "--json"))], [fwd])
        peers = [p["peer"] for p in e.network("nat")["ports"]]
        self.assertIn(f"unix:{listener}", peers, "the listening port is back")
        self.assertIn("10.0.2.15", json.dumps(e.network("nat")["nat"]["leases"]), "leases restored")

        # A newcomer asking first must not be handed a restored lease...
        c = self.guest_with_mac("52:54:00:0a:00:0c")
        self.assertNotIn(c.ip, ("10.0.2.15", RESERVED))
        # ...and the guests come back to their own addresses (same MACs, TAPs re-created by the restore).
        a2 = self.guest_with_mac(MAC_A, ns=a.ns)
        r2 = self.guest_with_mac(MAC_R, ns=r.ns)
        self.assertEqual((a2.ip, r2.ip), ("10.0.2.15", RESERVED))
        # The restored forward reaches guest A.
        srv = a.ns.popen(self.cleanup, ["python3", "-c", GUEST_ECHO_PY])
        wait_for(lambda: listening(srv.pid, 8022), what="guest echo server")
        out = self.hostns.run(["python3", "-c", "import socket,sys; s=socket.create_connection(('127.0.0.1',2222),5);"
                               "s.sendall(b'hi'); print(s.recv(100).decode())"], timeout=20).stdout
        self.assertEqual(out.strip(), "echo:hi")

    def test_truncated_state_file_is_reported_and_the_previous_one_used(self):
        e = self.engine()
        e.vnet("net", "add", "lab1")
        e.vnet("net", "add", "lab2", "--mode", "hub")
        e.vnet("down")
        path = os.path.join(e.run_dir, "state", "state.json")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text[: len(text) // 2])  # as a crash or a full disk would leave it
        line = text[: len(text) // 2].count("\n") + 1
        res = run([VNET, "--run-dir", e.run_dir, "up"], timeout=30)
        with open(os.path.join(e.run_dir, "vnet.pid")) as f:
            e.pid = int(f.read())
        self.assertIn(f"{path}:{line}: the file ends early", res.stderr)
        self.assertIn(f"using the previous state {path}.prev", res.stderr)
        self.assertEqual(sorted(n["name"] for n in json.loads(e.vnet("net", "list", "--json"))),
                         ["default", "lab1", "lab2"])
        self.assertTrue(os.path.exists(path + ".corrupt"), "the damaged file is kept")
        # The next save writes a good file again.
        e.vnet("net", "del", "lab1")
        with open(path) as f:
            self.assertEqual([d["request"]["name"] for d in json.load(f)["definitions"]], ["lab2"])

    def test_ready_notification_only_once_status_answers(self):
        run_dir = os.path.join(self.tmp, "run")
        os.mkdir(run_dir, 0o700)
        sock_path = os.path.join(self.tmp, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.cleanup.add(sock.close)
        sock.bind(sock_path)
        sock.settimeout(20)
        env = dict(os.environ, NOTIFY_SOCKET=sock_path)
        proc = self.cleanup.process(subprocess.Popen([VNET, "--run-dir", run_dir, "up", "--foreground"], env=env,
                                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        message = sock.recv(4096).decode()
        # At the moment READY=1 arrives, the control socket answers.
        status = run([VNET, "--run-dir", run_dir, "status", "--json"], timeout=10)
        self.assertIn("READY=1", message.splitlines())
        self.assertIn(f"MAINPID={proc.pid}", message.splitlines())
        self.assertEqual(json.loads(status.stdout)["engine"]["pid"], proc.pid)
        os.kill(proc.pid, signal.SIGTERM)
        sock.settimeout(5)
        self.assertIn("STOPPING=1", sock.recv(4096).decode())
        self.assertEqual(proc.wait(timeout=5), 0)

    def test_socket_activation_serves_the_first_client_and_logs_for_the_journal(self):
        """systemd-socket-activate passes the control socket as systemd does (fd 3, LISTEN_PID, LISTEN_FDS) and
        starts the engine when the first client connects; stderr is marked as the journal's stream."""
        run_dir = os.path.join(self.tmp, "run")
        os.mkdir(run_dir, 0o700)
        sock_path = os.path.join(run_dir, "control.sock")
        err_path = os.path.join(self.tmp, "engine.err")
        err = open(err_path, "w")
        self.cleanup.add(err.close)
        st = os.fstat(err.fileno())
        proc = self.cleanup.process(subprocess.Popen(
            ["systemd-socket-activate", "-l", sock_path, "-E", f"JOURNAL_STREAM={st.st_dev}:{st.st_ino}",
             VNET, "--run-dir", run_dir, "up", "--foreground"],
            stdout=subprocess.DEVNULL, stderr=err, preexec_fn=lambda: os.umask(0o022)))
        wait_for(lambda: os.path.exists(sock_path), what="the manager's socket")
        inode = os.stat(sock_path).st_ino
        time.sleep(0.3)
        self.assertFalse(os.path.exists(os.path.join(run_dir, "vnet.pid")), "no engine before the first client")
        # The first client's connection starts the engine (exec'd in the launcher's place), which answers it.
        status = json.loads(run([VNET, "--run-dir", run_dir, "status", "--json"], timeout=20).stdout)
        self.assertEqual(status["engine"]["pid"], proc.pid)
        self.assertEqual(os.stat(sock_path).st_ino, inode, "served on the passed socket, not a new one")
        run([VNET, "--run-dir", run_dir, "down"], timeout=20)
        self.assertEqual(proc.wait(timeout=10), 0)
        self.assertTrue(os.path.exists(sock_path), "the manager's socket file is left to the manager")
        with open(err_path) as f:
            log = f.read()
        self.assertIn(f"<6>control socket {sock_path} passed by the service manager", log)
        mode = os.stat(sock_path).st_mode & 0o777  # the launcher's 0666 less the umask
        self.assertIn(f"<4>control socket {sock_path} has mode {mode:04o}: other users can connect", log)
        self.assertIn("<6>vnet stopped", log)
        self.assertNotRegex(log, r"(?m)^\d\d:\d\d:\d\d\.\d{3} ", "no timestamps: the journal stamps lines")

    def test_systemd_units_verify_cleanly(self):
        """contrib/systemd's units (system and user, service and socket) load without a warning."""
        contrib = os.path.join(os.path.dirname(__file__), "..", "..", "contrib", "systemd")
        for flavour, flags in (("", []), ("user", ["--user"])):
            units = os.path.join(self.tmp, flavour or "system")
            os.makedirs(units)
            for name in ("vnet.service", "vnet.socket"):
                with open(os.path.join(contrib, flavour, name)) as f:
                    text = f.read().replace("/usr/local/bin/vnet", os.path.abspath(VNET))
                with open(os.path.join(units, name), "w") as f:
                    f.write(text)
            runtime = os.path.join(self.tmp, "xdg")
            os.makedirs(runtime, 0o700, exist_ok=True)
            res = run(["systemd-analyze"] + flags + ["verify", os.path.join(units, "vnet.socket"),
                                                     os.path.join(units, "vnet.service")],
                      check=False, env=dict(os.environ, XDG_RUNTIME_DIR=runtime))
            self.assertEqual((res.returncode, res.stderr), (0, ""), f"{flavour or 'system'} units")

    def test_sigterm_under_load_stops_within_two_seconds_with_state_saved(self):
        e = self.build_lab()
        self.nat_net("nat")
        g = self.guest()
        srv = self.inet.popen(self.cleanup, ["iperf3", "-s", "-B", INET_ADDR, "-p", "5201"])
        wait_for(lambda: listening(srv.pid, 5201), what="iperf3 listening")
        client = g.popen(self.cleanup, ["iperf3", "-c", INET_ADDR, "-p", "5201", "-t", "30"])
        wait_for(lambda: self.tcp_flows() >= 2, timeout=10, what="iperf3 flows through the NAT")
        time.sleep(1)
        state = os.path.join(e.run_dir, "state", "state.json")
        before = os.stat(state).st_mtime_ns
        start = time.monotonic()
        os.kill(e.pid, signal.SIGTERM)
        wait_for(lambda: not e.alive(), timeout=5, interval=0.01, what="engine gone")
        took = time.monotonic() - start
        self.assertLess(took, 2.0, f"SIGTERM under load took {took:.2f} s")
        self.assertGreater(os.stat(state).st_mtime_ns, before, "state saved on the way out")
        with open(state) as f:
            saved = json.load(f)
        self.assertEqual([d["request"]["name"] for d in saved["definitions"] if d["request"]["cmd"] == "net_add"],
                         ["nat"])
        self.assertIn(g.ip, json.dumps(saved["leases"]))
        # The guest's connections were reset rather than left to time out.
        try:
            client.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.fail("the guest's iperf3 still runs 5 s after the engine stopped: its flows were not reset")
        self.assertRegex(client.stderr.read().decode() + client.stdout.read().decode(), "reset by peer|Broken pipe")

    def test_metrics_scraped_over_http_move_with_traffic(self):
        blob = os.urandom(2 << 20)
        e = self.build_lab(http_files={"blob": blob})
        self.nat_net("nat")
        e.vnet("pf", "add", "nat", "tcp:127.0.0.1:2223-:8022")
        e.restart("--metrics", "127.0.0.1:9477")
        g = self.guest()

        def scrape():
            text = self.hostns.run(["curl", "-sf", "http://127.0.0.1:9477/metrics"], timeout=20).stdout
            samples = {}
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
            return samples

        def value(samples, name, **labels):
            return samples[(name, tuple(sorted(labels.items())))]

        before = scrape()
        port = dict(network="nat", port=str(g.port), kind="tap")
        g.run(["curl", "-sf", "-o", "/dev/null", f"http://{INET_ADDR}:8080/blob"], timeout=60)
        srv = g.popen(self.cleanup, ["python3", "-c", GUEST_ECHO_PY])
        wait_for(lambda: listening(srv.pid, 8022), what="guest echo server")
        self.hostns.run(["python3", "-c", "import socket; s=socket.create_connection(('127.0.0.1',2223),5);"
                         "s.sendall(b'x'); s.recv(10)"], timeout=20)
        after = scrape()
        self.assertGreaterEqual(value(after, "vnet_port_tx_bytes_total", **port)
                                - value(before, "vnet_port_tx_bytes_total", **port), len(blob))
        self.assertGreater(value(after, "vnet_port_rx_frames_total", **port),
                           value(before, "vnet_port_rx_frames_total", **port))
        self.assertGreaterEqual(value(after, "vnet_nat_flows_created_total", network="nat", proto="tcp")
                                - value(before, "vnet_nat_flows_created_total", network="nat", proto="tcp"), 2)
        self.assertEqual(value(after, "vnet_nat_leases", network="nat", state="bound"), 1)
        self.assertEqual(value(after, "vnet_nat_forward_connections_total", network="nat", forward="tcp-2223",
                               proto="tcp"), 1)
        self.assertIn(("vnet_port_drops_total", tuple(sorted(dict(port, cause="overflow").items()))), after)
        # `vnet metrics` prints the same families.
        cli = {f.name for f in text_string_to_metric_families(e.vnet("metrics"))}
        self.assertIn("vnet_nat_flows", cli)
        self.assertIn("vnet_port_tx_bytes", cli)  # the parser drops _total from counter family names
        # `vnet status --watch` redraws with rates.
        watch = self.cleanup.process(subprocess.Popen([VNET, "--run-dir", e.run_dir, "status", "--watch", "0.5"],
                                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        time.sleep(1.6)
        watch.terminate()
        shown = watch.communicate(timeout=5)[0].decode()
        self.assertGreaterEqual(shown.count("\033[2J"), 2, shown[-500:])
        self.assertIn("rates over the last 0.5 s", shown)
        self.assertRegex(shown, rf"\n  nat +{g.port} ")
        # Anything but GET /metrics is refused; the listener is loopback only.
        self.assertEqual(self.hostns.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                          "http://127.0.0.1:9477/"], check=False).stdout, "404")
        res = run([VNET, "--run-dir", os.path.join(self.tmp, "x"), "up", "--metrics", "0.0.0.0:9478"], check=False)
        self.assertIn("expected a loopback address", res.stderr)


if __name__ == "__main__":
    unittest.main()
