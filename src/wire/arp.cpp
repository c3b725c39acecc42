#include "wire/arp.hpp"

#include <cstring>

namespace vnet::wire {

namespace {
constexpr std::size_t kFixedLen = 8;  // htype..op, enough to know the address sizes
}

Parsed<ArpPacket> ArpPacket::parse(Bytes b) noexcept {
  if (b.size() < kFixedLen) return ParseError::Truncated;
  ArpPacket p(b);
  if (p.hardware_type() != kHtypeEthernet || p.protocol_type() != kPtypeIpv4 ||
      p.hardware_len() != 6 || p.protocol_len() != 4) {
    return ParseError::Unsupported;
  }
  if (b.size() < kLen) return ParseError::Truncated;
  return ArpPacket(b.first(kLen));
}

Parsed<ArpRepr> ArpRepr::parse(const ArpPacket& p) noexcept {
  const auto op = p.operation();
  if (op != static_cast<std::uint16_t>(ArpOp::Request) && op != static_cast<std::uint16_t>(ArpOp::Reply)) {
    return ParseError::Unsupported;
  }
  return ArpRepr{static_cast<ArpOp>(op), p.sender_mac(), p.sender_ip(), p.target_mac(), p.target_ip()};
}

std::size_t ArpRepr::emit(MutBytes buf) const noexcept {
  if (buf.size() < ArpPacket::kLen) return 0;
  store_be16(buf, 0, ArpPacket::kHtypeEthernet);
  store_be16(buf, 2, ArpPacket::kPtypeIpv4);
  buf[4] = 6;
  buf[5] = 4;
  store_be16(buf, 6, static_cast<std::uint16_t>(op));
  std::memcpy(buf.data() + 8, sender_mac.octets.data(), 6);
  std::memcpy(buf.data() + 14, sender_ip.octets.data(), 4);
  std::memcpy(buf.data() + 18, target_mac.octets.data(), 6);
  std::memcpy(buf.data() + 24, target_ip.octets.data(), 4);
  return ArpPacket::kLen;
}

}  // namespace vnet::wire
