// ARP for Ethernet/IPv4 (RFC 826). Other hardware/protocol combinations are
// reported as Unsupported rather than parsed generically: vnet only ever
// answers for IPv4 on Ethernet, and fixed offsets keep the view trivial.
#pragma once

#include <cstddef>
#include <cstdint>

#include "wire/bytes.hpp"
#include "wire/error.hpp"
#include "wire/ipaddr.hpp"
#include "wire/mac.hpp"

namespace vnet::wire {

enum class ArpOp : std::uint16_t {
  Request = 1,
  Reply = 2,
};

class ArpPacket {
 public:
  static constexpr std::size_t kLen = 28;  // Ethernet/IPv4 only
  static constexpr std::uint16_t kHtypeEthernet = 1;
  static constexpr std::uint16_t kPtypeIpv4 = 0x0800;

  ArpPacket() = default;
  static Parsed<ArpPacket> parse(Bytes b) noexcept;

  std::uint16_t hardware_type() const { return load_be16(buf_, 0); }
  std::uint16_t protocol_type() const { return load_be16(buf_, 2); }
  std::uint8_t hardware_len() const { return buf_[4]; }
  std::uint8_t protocol_len() const { return buf_[5]; }
  // Raw value: ops other than request/reply (RARP, InARP) are not rejected here.
  std::uint16_t operation() const { return load_be16(buf_, 6); }
  MacAddr sender_mac() const { return MacAddr::from_bytes(buf_.subspan(8, 6)); }
  Ipv4Addr sender_ip() const { return Ipv4Addr::from_bytes(buf_.subspan(14, 4)); }
  MacAddr target_mac() const { return MacAddr::from_bytes(buf_.subspan(18, 6)); }
  Ipv4Addr target_ip() const { return Ipv4Addr::from_bytes(buf_.subspan(24, 4)); }

  // The 28 ARP bytes; Ethernet padding after them is excluded.
  Bytes bytes() const { return buf_; }

 private:
  explicit ArpPacket(Bytes b) : buf_(b) {}
  Bytes buf_;
};

struct ArpRepr {
  ArpOp op = ArpOp::Request;
  MacAddr sender_mac;
  Ipv4Addr sender_ip;
  MacAddr target_mac;
  Ipv4Addr target_ip;

  // Unsupported for operations other than request/reply.
  static Parsed<ArpRepr> parse(const ArpPacket& p) noexcept;
  static constexpr std::size_t buffer_len() { return ArpPacket::kLen; }
  // Returns ArpPacket::kLen, or 0 when buf is too small.
  std::size_t emit(MutBytes buf) const noexcept;

  friend bool operator==(const ArpRepr&, const ArpRepr&) = default;
};

}  // namespace vnet::wire
