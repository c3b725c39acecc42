#!/usr/bin/env python3
"""Writes the seed corpora next to this script. Re-run after changing seeds.

The frames mirror tests/unit/wire_samples.hpp (checksums computed there by an
independent RFC 1071 implementation)."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST = bytes.fromhex("525400123456")
GW = bytes.fromhex("525400123502")


def eth(dst, ethertype, payload):
    return dst + GUEST + struct.pack("!H", ethertype) + payload


ARP_REQ = eth(b"\xff" * 6, 0x0806, bytes.fromhex(
    "0001080006040001525400123456 0a00020f 000000000000 0a000202".replace(" ", "")) + bytes(18))
DNS = eth(GW, 0x0800, bytes.fromhex(
    "45000039 1c464000 4011065d 0a00020f 0a000203"
    "9c400035 0025cfe1 abcd0100 00010000 00000000 076578616d706c6503636f6d0000010001".replace(" ", "")))
TCP_SYN = eth(GW, 0x0800, bytes.fromhex(
    "4500003c 00004000 4006f8d2 0a00020f 5db8d822"
    "b26e0050 12345678 00000000 a002faf0 0d790000"
    "020405b4 0402080a 0001e240 00000000 01030307".replace(" ", "")))
ICMP6_VLAN = GW + GUEST + bytes.fromhex("81000064 86dd") + bytes.fromhex(
    "60000000000c3a40 fd000000000000000000000000000002 fd000000000000000000000000000001"
    "8000a69a00420007 70696e67".replace(" ", ""))



def nat_record(port, kind, body):
    """One record of fuzz_nat_path: [port][kind][len][bytes]."""
    return bytes([port, kind, len(body)]) + body


def nat_dhcp_discover(mac_last):
    m = bytearray(240)
    m[0:3] = b"\x01\x01\x06"
    m[4:8] = b"\x00\x00\x10\x01"
    m[28:34] = bytes([0x52, 0x54, 0, 0, 0, mac_last])
    m[236:240] = bytes([99, 130, 83, 99])
    return bytes(m) + bytes([53, 1, 1, 255])


SEEDS = {
    "nat_path": {
        # guest 0 pings the gateway from .15; guest 1 pings and ARPs from .15 too
        "ping_then_spoof": nat_record(0, 3, bytes([0, 0, 0, 0]) + b"abcdefgh")
                           + nat_record(1, 3, bytes([0, 0, 0, 0]) + b"abcdefgh")
                           + nat_record(1, 1, bytes([0, 0, 0, 0, 0, 1, 0])),
        # DISCOVER from 0.0.0.0 to broadcast:67 with chaddr = the frame's MAC
        "dhcp_discover": nat_record(0, 2, bytes([0, 6, 2, 1, 1, 0]) + nat_dhcp_discover(1)),
        # TCP SYN to 127.0.0.1 and a DNS query to the DNS address
        "martian_and_dns": nat_record(2, 4, bytes([0, 2, 4, 0]) + bytes(13) + b"\x02" + bytes(6))
                           + nat_record(2, 2, bytes([0, 2, 1, 0, 1, 1]) + bytes.fromhex(
                               "abcd01000001000000000000076578616d706c6503636f6d0000010001")),
    },
    "ethernet": {"arp_request": ARP_REQ, "ipv4_udp_dns": DNS, "ipv4_tcp_syn": TCP_SYN,
                 "vlan_ipv6_icmp6_echo": ICMP6_VLAN},
    "tcp_options": {
        "linux_syn": bytes.fromhex("020405b40402080a0001e2400000000001030307"),
        "sack_blocks": bytes.fromhex("0101050a0000000100000002 0101080a0000000100000002".replace(" ", "")),
        "malformed_len1": bytes.fromhex("01010201"),
    },
    "guard": {
        # first byte: 1 = IPv6, 0 = IPv4
        "ipv6_router_advert": b"\x01" + bytes.fromhex("6000000000103aff") + bytes(16) + bytes(16)
                              + bytes.fromhex("8600000040000708") + bytes(8),
        "ipv6_frag_then_icmp6": b"\x01" + bytes.fromhex("6000000000102cff") + bytes(32)
                                + bytes.fromhex("3a00000100000007") + bytes.fromhex("8600000000000000"),
        "ipv4_dhcp_offer": b"\x00" + bytes.fromhex("4500001c00010000401100000a000202ffffffff")
                           + bytes.fromhex("0043004400080000"),
    },
    "vxlan": {
        # 8-byte VXLAN header (I flag, VNI 4242) in front of an Ethernet frame
        "vni_4242_arp": bytes.fromhex("0800000000109200") + ARP_REQ,
        "i_flag_clear": bytes.fromhex("0000000000000100") + ARP_REQ,
        "inner_runt": bytes.fromhex("0800000000109200") + ARP_REQ[:13],
    },
    "http_request": {
        "get_page": b"GET /?token=00112233445566778899aabbccddeeff HTTP/1.1\r\nHost: 127.0.0.1:8090\r\n\r\n",
        "post_port": b"POST /api/port HTTP/1.1\r\nHost: 127.0.0.1:8090\r\nX-Vnet-Token: ab\r\n"
                     b"Content-Length: 36\r\n\r\n{\"net\":\"default\",\"port\":1,\"link\":\"up\"}",
    },
    "vhost_user": {
        # a control message (host byte order), then it doubles as guest memory
        "get_features": struct.pack("<III", 1, 1, 0),
        "set_vring_num": struct.pack("<IIIII", 8, 1, 8, 0, 256),
        "mem_table_one_region": struct.pack("<III", 5, 1, 40) + struct.pack("<II", 1, 0)
                                + struct.pack("<QQQQ", 0, 1 << 20, 0x7f0000000000, 0),
    },
    "roundtrip": {
        "v4_tcp": bytes([0x00, 0x00, 0x40]) + bytes(range(1, 64)),
        "v6_udp": bytes([0x03, 0x01, 0x00]) + bytes(range(100, 180)),
        "v4_icmp": bytes([0x04, 0x00, 0x20]) + b"\x08\x00abcdefgh" * 4,
    },
}

for target, seeds in SEEDS.items():
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
