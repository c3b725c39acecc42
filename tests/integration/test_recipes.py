"""docs/recipes.md as a user would follow it: every libvirt XML block in it,
and what `vnet attach --libvirt` prints, validated against libvirt's domain
schema with virt-xml-validate (libvirt-clients); the QEMU options libvirt
generates for the doc's `type='udp'` and `type='mcast'` interfaces, run
against vnet ports made from the doc's own `vnet port add` lines, carry a
namespace guest's DHCP lease and pings (stock QEMU as the peer, as in
test_qemu_peers; the other transports are covered there)."""

import os
import re
import unittest
import xml.etree.ElementTree as ET

import test_qemu_peers
from vnetlib import VnetTestCase, run, wait_for

RECIPES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "recipes.md")
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"


def recipes_text():
    with open(RECIPES) as f:
        return f.read()


def xml_blocks():
    return re.findall(r"```xml\n(.*?)```", recipes_text(), re.S)


def vnet_spec(prefix):
    """The SPEC of the doc's `vnet port add lab SPEC` line starting with prefix."""
    m = re.search(r"^vnet port add lab (" + re.escape(prefix) + r"\S*)$", recipes_text(), re.M)
    assert m, f"no `vnet port add lab {prefix}...` line in docs/recipes.md"
    return m.group(1)


def domain_with(element):
    """A minimal domain holding one <interface> or <qemu:commandline> element."""
    inside, outside = ("", element) if element.lstrip().startswith("<qemu:commandline") else (element, "")
    return (f"<domain type='kvm' xmlns:qemu='{QEMU_NS}'>\n"
            "  <name>vnet-recipe</name>\n  <memory unit='MiB'>256</memory>\n"
            "  <os><type arch='x86_64'>hvm</type></os>\n"
            f"  <devices>\n{inside}  </devices>\n{outside}</domain>\n")


class LibvirtXmlTest(VnetTestCase):
    def validate(self, element, name):
        path = os.path.join(self.tmp, f"{name}.xml")
        with open(path, "w") as f:
            f.write(domain_with(element))
        return run(["virt-xml-validate", path, "domain"], check=False)

    def assertValid(self, element, name):
        res = self.validate(element, name)
        self.assertEqual(res.returncode, 0, f"{name} does not validate:\n{element}\n{res.stdout}{res.stderr}")

    def test_every_xml_block_in_the_recipes_validates(self):
        blocks = xml_blocks()
        kinds = {re.match(r"<(interface type='\w+'|qemu:commandline)", b).group(1) for b in blocks}
        self.assertEqual(kinds, {"interface type='client'", "interface type='server'", "interface type='udp'",
                                 "interface type='mcast'", "interface type='bridge'", "interface type='vhostuser'",
                                 "qemu:commandline"})
        for i, block in enumerate(blocks):
            self.assertValid(block, f"recipe-{i}")
        # The schema does check: a client interface without its port is refused.
        broken = blocks[[i for i, b in enumerate(blocks) if "type='client'" in b][0]]
        self.assertNotEqual(self.validate(re.sub(r" port='\d+'", "", broken), "broken").returncode, 0)

    def test_vnet_attach_libvirt_output_validates(self):
        e = self.engine()
        unix = e.vnet("attach", "--libvirt")  # network default: a unix socket listener
        self.assertIn("<qemu:commandline>", unix)
        self.assertValid(unix, "attach-unix")
        e.vnet("net", "add", "lab")
        e.add_port("lab", "socket,listen=127.0.0.1:0")
        first = e.vnet("attach", "lab", "--libvirt")
        second = e.vnet("attach", "lab", "--libvirt")
        for n, text in enumerate((first, second)):
            self.assertTrue(text.startswith("<interface type='client'>"), text)
            self.assertValid(text, f"attach-client-{n}")
        macs = [ET.fromstring(t).find("mac").get("address") for t in (first, second)]
        self.assertNotEqual(macs[0], macs[1], "each guest gets a MAC of its own")
        listener = ET.fromstring(first).find("source")
        lport = next(p for p in e.network("lab")["ports"] if p["kind"] == "stream-listen")
        self.assertEqual(f"{listener.get('address')}:{listener.get('port')}", lport["peer"])


class LibvirtNetdevTest(test_qemu_peers.QemuPeerTest):
    """QEMU run with the -netdev libvirt builds from the doc's XML."""

    def interface(self, kind):
        block = next(b for b in xml_blocks() if b.startswith(f"<interface type='{kind}'>"))
        return ET.fromstring(block).find("source")

    def test_udp_interface_carries_a_lease(self):
        source = self.interface("udp")
        local = source.find("local")
        qns = self.qemu_netns()
        engine = self.new_engine(netns=qns)
        guest, _ = self.guest(engine)
        pid = engine.add_port(test_qemu_peers.NET, vnet_spec("udp-tunnel,"))
        qemu = self.start_qemu(qns, f"socket,id=s,udp={source.get('address')}:{source.get('port')},"
                                    f"localaddr={local.get('address')}:{local.get('port')}")
        self.wait_bound_udp(qemu, int(local.get("port")))
        port = self.lease_and_ping(engine, guest, pid)
        self.assertEqual(port["peer"], f"{local.get('address')}:{local.get('port')}")

    def test_mcast_interface_carries_a_lease(self):
        source = self.interface("mcast")
        group = f"{source.get('address')}:{source.get('port')}"
        qns = self.qemu_netns(multicast=True)  # as the doc says: loopback only, multicast routed to lo
        engine = self.new_engine(netns=qns)
        guest, _ = self.guest(engine)
        pid = engine.add_port(test_qemu_peers.NET, vnet_spec("socket,mcast="))
        qemu = self.start_qemu(qns, f"socket,id=s,mcast={group}")  # libvirt gives no localaddr
        self.wait_bound_udp(qemu, int(source.get("port")))
        port = self.lease_and_ping(engine, guest, pid)
        self.assertEqual((port["kind"], port["peer"]), ("mcast", group))


def load_tests(loader, standard_tests, pattern):
    # Only this module's tests: not the QemuPeerTest methods LibvirtNetdevTest inherits.
    suite = unittest.TestSuite()
    suite.addTests(loader.loadTestsFromTestCase(LibvirtXmlTest))
    suite.addTests(LibvirtNetdevTest(name) for name in ("test_udp_interface_carries_a_lease",
                                                        "test_mcast_interface_carries_a_lease"))
    return suite


if __name__ == "__main__":
    unittest.main()
