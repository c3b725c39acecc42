"""`vnet ui`: the live topology page, served by the CLI on loopback.

The page's own script runs in node (ui_dom.js: a minimal DOM, the real
server behind fetch) against an engine with a NAT network and a namespace
guest that got its lease: what it draws and what its buttons do is checked
against the engine's status. The server's refusals (no token, wrong token,
a foreign Host, malformed and oversized requests, a silent client) are
checked with raw HTTP.
"""

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

from natlib import NatTestCase
from vnetlib import VNET, have, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with python3-selenium


class UiTest(NatTestCase):
    def setUp(self):
        super().setUp()
        for tool in ("node", "busybox"):
            if not have(tool):
                self.fail(f"{tool} is required (Debian: nodejs, busybox-static)")
        self.build_lab()
        self.nat_net("nat")
        self.g = self.guest("nat")
        self.g.run(["busybox", "ping", "-c", "2", "-W", "2", "10.0.2.2"], check=False)
        self.ui = subprocess.Popen([VNET, "--run-dir", self.e.run_dir, "ui"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        self.cleanup.add(self.ui.stdout.close)
        self.cleanup.add(self.ui.stderr.close)
        self.cleanup.process(self.ui)
        line = self.ui.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:(\d+))/\?token=([0-9a-f]{32})", line)
        self.assertIsNotNone(m, line + self.ui.stderr.read() if self.ui.poll() is not None else line)
        self.url, self.base, self.port, self.token = m.group(0), m.group(1), int(m.group(2)), m.group(3)

    def page(self, click=None, net=None):
        args = ["node", os.path.join(HERE, "ui_dom.js"), self.url] + ([click, net] if click else [])
        res = subprocess.run(args, capture_output=True, text=True, timeout=30)
        self.assertEqual(res.returncode, 0, res.stderr)
        return json.loads(res.stdout)

    def texts(self, node):
        if isinstance(node, str):
            return [node]
        return [t for c in node.get("children", []) for t in self.texts(c)]

    def api(self, path, body=None, token=None, host=None):
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"X-Vnet-Token": token or self.token})
        if host:
            req.add_header("Host", host)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def raw(self, data, wait=10):
        with socket.create_connection(("127.0.0.1", self.port), timeout=wait) as s:
            s.sendall(data)
            return s.recv(4096).decode(errors="replace")

    def test_the_page_draws_the_network_its_ports_and_the_guest(self):
        dom = self.page()
        self.assertEqual(dom["err"], "")
        cards = {c["attrs"]["data-net"]: c for c in dom["nets"]["children"]}
        self.assertIn("nat", cards)
        text = " ".join(self.texts(cards["nat"]))
        self.assertIn("NAT router, mtu", text)
        self.assertIn(f"port {self.g.port}: tap", text)
        lease = self.e.network("nat")["nat"]["leases"][0]
        self.assertIn(f"{lease['mac']}  {lease['ip']}", text, "the guest drawn at its port with its lease")
        # A throughput sparkline per port, and the controls.
        self.assertIn("polyline", json.dumps(cards["nat"]))
        self.assertIn("link down", text)
        self.assertIn("add forward", text)

    def test_links_and_forwards_change_from_the_page(self):
        # The first "link down" button of network nat is its port 1 (the gateway).
        self.page(click="link down", net="nat")
        wait_for(lambda: self.e.port("nat", 1)["link"] == "down", what="port 1 set down from the page")
        self.page(click="link up", net="nat")
        wait_for(lambda: self.e.port("nat", 1)["link"] == "up", what="port 1 back up")
        status, reply = self.api("/api/pf/add", {"net": "nat", "rule": "tcp:127.0.0.1:2299-:22"})
        self.assertEqual((status, reply["ok"]), (200, True), reply)
        self.assertIn("tcp-2299", self.e.vnet("pf", "list", "nat"))
        self.assertIn("tcp-2299", " ".join(self.texts(self.page()["nets"])))
        self.page(click="remove", net="nat")
        self.assertNotIn("tcp-2299", self.e.vnet("pf", "list", "nat"))
        # An engine error reaches the page as its message.
        status, reply = self.api("/api/pf/add", {"net": "nat", "rule": "tcp:nonsense"})
        self.assertFalse(reply["ok"])
        self.assertTrue(reply["error"])

    def test_the_page_in_headless_chromium(self):
        for tool in ("chromium", "chromedriver"):
            if not have(tool):
                self.fail(f"{tool} is required (Debian: chromium, chromium-driver, python3-selenium)")
        # Traffic for the counters, and a service in the guest for the forward.
        pinger = self.g.ns.popen(self.cleanup, ["busybox", "ping", "-i", "0.2", "10.0.2.2"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.g.ns.popen(self.cleanup, ["sh", "-c", "echo hello-from-guest | nc -l -p 22"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        artifacts = os.environ.get("VNET_ARTIFACTS") or self.tmp
        os.makedirs(artifacts, exist_ok=True)
        shot = os.path.join(artifacts, "vnet-ui.png")
        res = subprocess.run([SYSTEM_PYTHON, os.path.join(HERE, "ui_browser.py"), self.url, "nat", str(self.g.port),
                              "tcp:127.0.0.1:2298-:22", shot], capture_output=True, text=True, timeout=120)
        pinger.terminate()
        self.assertEqual(res.returncode, 0, res.stderr[-3000:])
        seen = json.loads(res.stdout.strip().splitlines()[-1])
        self.assertNotEqual(seen["rx_before"], seen["rx_after"], f"counters did not move while pinging: {seen}")
        self.assertEqual(seen["forward_listed"], "tcp-2298")
        self.assertEqual(seen["error_line"], "")
        self.assertIn("open the URL", seen["wrong_token_page"])
        self.assertGreater(os.path.getsize(shot), 10_000, "the screenshot")
        # The forward added through the page carries a host connection to the guest.
        out = self.hostns.run(["nc", "-N", "-w", "5", "127.0.0.1", "2298"], input="", timeout=20).stdout
        self.assertIn("hello-from-guest", out)

    def test_requests_without_the_key_or_from_elsewhere_are_refused(self):
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(self.base + "/", timeout=10)
        self.assertEqual(cm.exception.code, 403)
        self.assertEqual(self.api("/api/status", token="0" * 32)[0], 403)
        self.assertEqual(self.api("/api/status", host=f"attacker.example:{self.port}")[0], 403)
        self.assertEqual(self.api("/api/status")[0], 200)
        self.assertIn("400 Bad Request", self.raw(b"GARBAGE\r\n\r\n"))
        self.assertIn("400 Bad Request", self.raw(b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n"))
        self.assertIn("400 Bad Request", self.raw(
            b"POST /api/port HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"))
        # A client that connects and says nothing holds the server at most its 5 s deadline.
        silent = socket.create_connection(("127.0.0.1", self.port))
        self.cleanup.add(silent.close)
        start = time.monotonic()
        self.assertEqual(self.api("/api/status")[0], 200)
        self.assertLess(time.monotonic() - start, 8)
