// VXLAN (RFC 7348): an Ethernet frame carried in a UDP datagram behind an
// 8-byte header.
//
//   0  flags: 0x08 = I, "the VNI is valid"; the other seven bits reserved
//   1  reserved, 24 bits
//   4  VNI (VXLAN network identifier), 24 bits
//   7  reserved, 8 bits
//
// Datagrams come from the network, from whoever can reach the port: parsing
// is strict about what must hold (length, the I flag, a whole inner Ethernet
// header) and, as the RFC asks, ignores the reserved bits.
#pragma once

#include <cstddef>
#include <cstdint>

#include "wire/bytes.hpp"

namespace vnet::wire {

inline constexpr std::size_t kVxlanHeaderSize = 8;
inline constexpr std::uint16_t kVxlanUdpPort = 4789;  // IANA
inline constexpr std::uint32_t kVxlanMaxVni = 0xffffff;
inline constexpr std::uint8_t kVxlanFlagVni = 0x08;
// What a VXLAN tunnel adds around an inner frame on an IPv4 underlay:
// outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8. IPv6 adds 20 more.
inline constexpr std::size_t kVxlanOverheadIpv4 = 50;
inline constexpr std::size_t kVxlanOverheadIpv6 = 70;

enum class VxlanError : std::uint8_t {
  None,
  Truncated,      // shorter than the VXLAN header
  NoVni,          // the I flag is clear: the header names no network
  InnerTooShort,  // the inner frame is shorter than an Ethernet header
};

const char* to_string(VxlanError e);

struct VxlanParse {
  std::uint32_t vni = 0;
  Bytes inner;  // the encapsulated Ethernet frame (a view into the datagram)
  VxlanError error = VxlanError::None;
  bool ok() const { return error == VxlanError::None; }
};

VxlanParse parse_vxlan(Bytes datagram);

// Writes the 8-byte header for `vni` (reserved bits zero) into out[0..8).
void emit_vxlan_header(MutBytes out, std::uint32_t vni);

}  // namespace vnet::wire
