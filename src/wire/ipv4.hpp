// IPv4 header (RFC 791).
#pragma once

#include <cstddef>
#include <cstdint>

#include "wire/bytes.hpp"
#include "wire/error.hpp"
#include "wire/ip_protocol.hpp"
#include "wire/ipaddr.hpp"

namespace vnet::wire {

class Ipv4Packet {
 public:
  static constexpr std::size_t kMinHeaderLen = 20;
  static constexpr std::size_t kMaxHeaderLen = 60;

  Ipv4Packet() = default;
  // Validates version, IHL and total length once. The view is trimmed to
  // total_len(), so Ethernet padding after a short packet is not payload.
  // The checksum is not checked here; see verify_checksum().
  static Parsed<Ipv4Packet> parse(Bytes b) noexcept;

  std::uint8_t version() const { return buf_[0] >> 4; }
  std::uint8_t ihl() const { return buf_[0] & 0x0f; }
  std::size_t header_len() const { return std::size_t{ihl()} * 4; }
  std::uint8_t tos() const { return buf_[1]; }
  std::uint8_t dscp() const { return buf_[1] >> 2; }
  std::uint8_t ecn() const { return buf_[1] & 0x03; }
  std::uint16_t total_len() const { return load_be16(buf_, 2); }
  std::uint16_t ident() const { return load_be16(buf_, 4); }
  bool dont_fragment() const { return (buf_[6] & 0x40) != 0; }
  bool more_fragments() const { return (buf_[6] & 0x20) != 0; }
  // In bytes (the field counts 8-byte units).
  std::uint16_t frag_offset() const { return static_cast<std::uint16_t>((load_be16(buf_, 6) & 0x1fff) * 8); }
  bool is_fragment() const { return more_fragments() || frag_offset() != 0; }
  std::uint8_t ttl() const { return buf_[8]; }
  IpProtocol protocol() const { return static_cast<IpProtocol>(buf_[9]); }
  std::uint16_t checksum() const { return load_be16(buf_, 10); }
  Ipv4Addr src() const { return Ipv4Addr::from_bytes(buf_.subspan(12, 4)); }
  Ipv4Addr dst() const { return Ipv4Addr::from_bytes(buf_.subspan(16, 4)); }

  bool verify_checksum() const;

  Bytes bytes() const { return buf_; }
  Bytes header() const { return buf_.first(header_len()); }
  // Options are exposed raw; vnet forwards them untouched.
  Bytes options() const { return buf_.subspan(kMinHeaderLen, header_len() - kMinHeaderLen); }
  Bytes payload() const { return buf_.subspan(header_len()); }

 protected:
  explicit Ipv4Packet(Bytes b) : buf_(b) {}
  Bytes buf_;
};

// Writable view for NAT: every setter keeps the header checksum valid
// incrementally (RFC 1624), so a packet that arrived valid stays valid.
class Ipv4PacketMut : public Ipv4Packet {
 public:
  Ipv4PacketMut() = default;
  static Parsed<Ipv4PacketMut> parse(MutBytes b) noexcept;

  void set_src(Ipv4Addr a);
  void set_dst(Ipv4Addr a);
  void set_ttl(std::uint8_t ttl);
  void set_checksum(std::uint16_t c) { store_be16(mut(), 10, c); }
  // Recomputes from scratch, for headers built or damaged in place.
  void fill_checksum();
  MutBytes payload_mut() const { return mut().subspan(header_len()); }

 private:
  explicit Ipv4PacketMut(MutBytes b) : Ipv4Packet(b) {}
  MutBytes mut() const { return {const_cast<std::uint8_t*>(buf_.data()), buf_.size()}; }
  void set_addr(std::size_t off, Ipv4Addr a);
};

struct Ipv4Repr {
  Ipv4Addr src;
  Ipv4Addr dst;
  IpProtocol protocol = IpProtocol::Udp;
  std::uint8_t ttl = 64;
  std::uint16_t payload_len = 0;
  std::uint8_t tos = 0;
  std::uint16_t ident = 0;
  // DF with a zero ident is legal for atomic datagrams (RFC 6864).
  bool dont_fragment = true;

  // Drops options and fragment state: callers that care check the view.
  static Parsed<Ipv4Repr> parse(const Ipv4Packet& p, bool verify_checksum = true) noexcept;
  static constexpr std::size_t header_len() { return Ipv4Packet::kMinHeaderLen; }
  std::size_t buffer_len() const { return header_len() + payload_len; }
  // Writes a 20-byte header with a valid checksum at buf[0..20); the payload,
  // if any, goes after it. Returns 20, or 0 when buf is too small or
  // payload_len does not fit the total-length field.
  std::size_t emit(MutBytes buf) const noexcept;

  friend bool operator==(const Ipv4Repr&, const Ipv4Repr&) = default;
};

}  // namespace vnet::wire
