// IPv6 fixed header (RFC 8200). Extension headers are not walked: callers
// see next_header() and decide.
#pragma once

#include <cstddef>
#include <cstdint>

#include "wire/bytes.hpp"
#include "wire/error.hpp"
#include "wire/ip_protocol.hpp"
#include "wire/ipaddr.hpp"

namespace vnet::wire {

class Ipv6Packet {
 public:
  static constexpr std::size_t kHeaderLen = 40;

  Ipv6Packet() = default;
  // Validates version and payload length; the view is trimmed to
  // 40 + payload_len(). Jumbograms (RFC 2675) are Unsupported.
  static Parsed<Ipv6Packet> parse(Bytes b) noexcept;

  std::uint8_t version() const { return buf_[0] >> 4; }
  std::uint8_t traffic_class() const {
    return static_cast<std::uint8_t>(((buf_[0] & 0x0f) << 4) | (buf_[1] >> 4));
  }
  std::uint32_t flow_label() const { return load_be32(buf_, 0) & 0x000fffff; }
  std::uint16_t payload_len() const { return load_be16(buf_, 4); }
  IpProtocol next_header() const { return static_cast<IpProtocol>(buf_[6]); }
  std::uint8_t hop_limit() const { return buf_[7]; }
  Ipv6Addr src() const { return Ipv6Addr::from_bytes(buf_.subspan(8, 16)); }
  Ipv6Addr dst() const { return Ipv6Addr::from_bytes(buf_.subspan(24, 16)); }

  Bytes bytes() const { return buf_; }
  Bytes payload() const { return buf_.subspan(kHeaderLen); }

 protected:
  explicit Ipv6Packet(Bytes b) : buf_(b) {}
  Bytes buf_;
};

// Writable view. IPv6 has no header checksum, but the upper-layer checksum
// covers the addresses: after set_src/set_dst the caller must adjust it
// (e.g. UdpPacketMut::adjust_for_address_change).
class Ipv6PacketMut : public Ipv6Packet {
 public:
  Ipv6PacketMut() = default;
  static Parsed<Ipv6PacketMut> parse(MutBytes b) noexcept;

  void set_src(const Ipv6Addr& a);
  void set_dst(const Ipv6Addr& a);
  void set_hop_limit(std::uint8_t h) { mut()[7] = h; }
  MutBytes payload_mut() const { return mut().subspan(kHeaderLen); }

 private:
  explicit Ipv6PacketMut(MutBytes b) : Ipv6Packet(b) {}
  MutBytes mut() const { return {const_cast<std::uint8_t*>(buf_.data()), buf_.size()}; }
};

struct Ipv6Repr {
  Ipv6Addr src;
  Ipv6Addr dst;
  IpProtocol next_header = IpProtocol::Udp;
  std::uint8_t hop_limit = 64;
  std::uint16_t payload_len = 0;
  std::uint8_t traffic_class = 0;
  std::uint32_t flow_label = 0;  // low 20 bits used

  static Ipv6Repr parse(const Ipv6Packet& p) noexcept;
  static constexpr std::size_t header_len() { return Ipv6Packet::kHeaderLen; }
  std::size_t buffer_len() const { return header_len() + payload_len; }
  // Writes the 40-byte header; returns 40, or 0 when buf is too small.
  std::size_t emit(MutBytes buf) const noexcept;

  friend bool operator==(const Ipv6Repr&, const Ipv6Repr&) = default;
};

}  // namespace vnet::wire
