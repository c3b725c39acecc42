// Builders of guest frames (Ethernet + ARP / IPv4 + UDP / ICMP / TCP) for
// tests that drive the NAT gateway through a real Network.
#pragma once

#include <cstdint>
#include <vector>

#include "wire/arp.hpp"
#include "wire/ethernet.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"
#include "wire/udp.hpp"

namespace vnet::testing {

using Frame = std::vector<std::uint8_t>;

inline const wire::MacAddr kGatewayMac{{0x52, 0x55, 10, 0, 2, 2}};

inline Frame arp_frame(const wire::MacAddr& eth_src, wire::ArpOp op, const wire::MacAddr& sender_mac,
                       wire::Ipv4Addr sender_ip, wire::Ipv4Addr target_ip,
                       const wire::MacAddr& eth_dst = wire::MacAddr::broadcast()) {
  Frame f(60, 0);
  wire::EthernetRepr eth{eth_dst, eth_src, wire::EtherType::Arp, std::nullopt};
  eth.emit(f);
  wire::ArpRepr arp{op, sender_mac, sender_ip, wire::MacAddr{}, target_ip};
  arp.emit(wire::MutBytes(f).subspan(wire::EthernetFrame::kHeaderLen));
  return f;
}

inline Frame ipv4_frame(const wire::MacAddr& eth_src, wire::Ipv4Addr src, wire::Ipv4Addr dst, wire::IpProtocol proto,
                        const std::vector<std::uint8_t>& l4, const wire::MacAddr& eth_dst = kGatewayMac) {
  Frame f(wire::EthernetFrame::kHeaderLen + wire::Ipv4Packet::kMinHeaderLen + l4.size(), 0);
  wire::EthernetRepr eth{eth_dst, eth_src, wire::EtherType::Ipv4, std::nullopt};
  eth.emit(f);
  wire::Ipv4Repr ip;
  ip.src = src;
  ip.dst = dst;
  ip.protocol = proto;
  ip.payload_len = static_cast<std::uint16_t>(l4.size());
  ip.emit(wire::MutBytes(f).subspan(wire::EthernetFrame::kHeaderLen));
  std::copy(l4.begin(), l4.end(), f.begin() + wire::EthernetFrame::kHeaderLen + wire::Ipv4Packet::kMinHeaderLen);
  if (f.size() < 60) f.resize(60, 0);
  return f;
}

inline Frame udp_frame(const wire::MacAddr& eth_src, wire::Ipv4Addr src, std::uint16_t sport, wire::Ipv4Addr dst,
                       std::uint16_t dport, const std::vector<std::uint8_t>& payload,
                       const wire::MacAddr& eth_dst = kGatewayMac) {
  std::vector<std::uint8_t> l4(wire::UdpPacket::kHeaderLen + payload.size());
  std::copy(payload.begin(), payload.end(), l4.begin() + wire::UdpPacket::kHeaderLen);
  wire::UdpRepr udp{sport, dport, static_cast<std::uint16_t>(payload.size())};
  udp.emit(l4, wire::IpAddr(src), wire::IpAddr(dst));
  return ipv4_frame(eth_src, src, dst, wire::IpProtocol::Udp, l4, eth_dst);
}

inline Frame ping_frame(const wire::MacAddr& eth_src, wire::Ipv4Addr src, wire::Ipv4Addr dst, std::uint16_t seq = 1) {
  const std::uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  auto icmp = wire::Icmpv4Repr::echo_request(0x77, seq, wire::Bytes(data, sizeof data));
  std::vector<std::uint8_t> l4(icmp.buffer_len());
  icmp.emit(l4);
  return ipv4_frame(eth_src, src, dst, wire::IpProtocol::Icmp, l4);
}

// A bare TCP SYN (no options); its checksum is left 0, the gateway's policy
// runs before the translator verifies it.
inline Frame tcp_syn_frame(const wire::MacAddr& eth_src, wire::Ipv4Addr src, std::uint16_t sport, wire::Ipv4Addr dst,
                           std::uint16_t dport) {
  std::vector<std::uint8_t> l4(20, 0);
  l4[0] = static_cast<std::uint8_t>(sport >> 8);
  l4[1] = static_cast<std::uint8_t>(sport);
  l4[2] = static_cast<std::uint8_t>(dport >> 8);
  l4[3] = static_cast<std::uint8_t>(dport);
  l4[7] = 1;      // seq
  l4[12] = 0x50;  // data offset 5
  l4[13] = 0x02;  // SYN
  l4[14] = 0xff;  // window
  return ipv4_frame(eth_src, src, dst, wire::IpProtocol::Tcp, l4);
}

}  // namespace vnet::testing
