// ICMPv4 (RFC 792) and ICMPv6 (RFC 4443).
//
// Both share an 8-byte header: type, code, checksum, and a 32-bit
// "rest of header" whose meaning depends on the type (echo ident/seq,
// next-hop MTU, pointer, or unused). The reprs keep that word raw and offer
// typed constructors for the messages vnet originates.
#pragma once

#include <cstddef>
#include <cstdint>

#include "wire/bytes.hpp"
#include "wire/error.hpp"
#include "wire/ipaddr.hpp"

namespace vnet::wire {

enum class Icmpv4Type : std::uint8_t {
  EchoReply = 0,
  DestUnreachable = 3,
  Redirect = 5,
  EchoRequest = 8,
  TimeExceeded = 11,
  ParamProblem = 12,
};

struct Icmpv4Unreachable {
  static constexpr std::uint8_t Net = 0;
  static constexpr std::uint8_t Host = 1;
  static constexpr std::uint8_t Protocol = 2;
  static constexpr std::uint8_t Port = 3;
  static constexpr std::uint8_t FragNeeded = 4;
  static constexpr std::uint8_t AdminProhibited = 13;
};

enum class Icmpv6Type : std::uint8_t {
  DestUnreachable = 1,
  PacketTooBig = 2,
  TimeExceeded = 3,
  ParamProblem = 4,
  EchoRequest = 128,
  EchoReply = 129,
  RouterSolicit = 133,
  RouterAdvert = 134,
  NeighborSolicit = 135,
  NeighborAdvert = 136,
  Redirect = 137,
};

inline constexpr std::size_t kIcmpHeaderLen = 8;

class Icmpv4Packet {
 public:
  static constexpr std::size_t kHeaderLen = kIcmpHeaderLen;

  Icmpv4Packet() = default;
  // ICMP has no length field: pass exactly the IP payload.
  static Parsed<Icmpv4Packet> parse(Bytes b) noexcept;

  Icmpv4Type type() const { return static_cast<Icmpv4Type>(buf_[0]); }
  std::uint8_t code() const { return buf_[1]; }
  std::uint16_t checksum() const { return load_be16(buf_, 2); }
  std::uint32_t rest_of_header() const { return load_be32(buf_, 4); }
  std::uint16_t echo_ident() const { return load_be16(buf_, 4); }
  std::uint16_t echo_seq() const { return load_be16(buf_, 6); }
  std::uint16_t next_hop_mtu() const { return load_be16(buf_, 6); }
  // Error messages quote the offending datagram in their payload; NAT must
  // translate that quote too.
  bool is_error() const;

  // Over the whole message (RFC 792: no pseudo-header for ICMPv4).
  bool verify_checksum() const;

  Bytes bytes() const { return buf_; }
  Bytes payload() const { return buf_.subspan(kHeaderLen); }

 protected:
  explicit Icmpv4Packet(Bytes b) : buf_(b) {}
  Bytes buf_;
};

class Icmpv4PacketMut : public Icmpv4Packet {
 public:
  Icmpv4PacketMut() = default;
  static Parsed<Icmpv4PacketMut> parse(MutBytes b) noexcept;

  // The echo identifier plays the role of a port for ICMP NAT.
  void set_echo_ident(std::uint16_t id);
  void fill_checksum();
  MutBytes payload_mut() const { return mut().subspan(kHeaderLen); }

 private:
  explicit Icmpv4PacketMut(MutBytes b) : Icmpv4Packet(b) {}
  MutBytes mut() const { return {const_cast<std::uint8_t*>(buf_.data()), buf_.size()}; }
};

struct Icmpv4Repr {
  Icmpv4Type type = Icmpv4Type::EchoRequest;
  std::uint8_t code = 0;
  std::uint32_t rest_of_header = 0;
  Bytes data;  // echo data or quoted datagram; must outlive the repr

  static Icmpv4Repr echo_request(std::uint16_t ident, std::uint16_t seq, Bytes data);
  static Icmpv4Repr echo_reply(std::uint16_t ident, std::uint16_t seq, Bytes data);
  // Quotes the original IP header plus the first 8 payload bytes, the
  // minimum of RFC 792 that suffices for NAT and socket demultiplexing.
  static Icmpv4Repr dest_unreachable(std::uint8_t code, Bytes original_ip_packet,
                                     std::uint16_t next_hop_mtu = 0);

  std::uint16_t echo_ident() const { return static_cast<std::uint16_t>(rest_of_header >> 16); }
  std::uint16_t echo_seq() const { return static_cast<std::uint16_t>(rest_of_header); }

  // Any type is accepted: the repr is generic.
  static Parsed<Icmpv4Repr> parse(const Icmpv4Packet& p, bool verify_checksum = true) noexcept;
  std::size_t buffer_len() const { return kIcmpHeaderLen + data.size(); }
  // Writes the whole message (data copied, overlap allowed) with checksum.
  // Returns buffer_len(), or 0 when buf is too small.
  std::size_t emit(MutBytes buf) const noexcept;
};

class Icmpv6Packet {
 public:
  static constexpr std::size_t kHeaderLen = kIcmpHeaderLen;

  Icmpv6Packet() = default;
  // Every ICMPv6 message carries at least a 4-byte body after
  // type/code/checksum, so 8 bytes is the minimum.
  static Parsed<Icmpv6Packet> parse(Bytes b) noexcept;

  Icmpv6Type type() const { return static_cast<Icmpv6Type>(buf_[0]); }
  std::uint8_t code() const { return buf_[1]; }
  std::uint16_t checksum() const { return load_be16(buf_, 2); }
  std::uint32_t rest_of_header() const { return load_be32(buf_, 4); }
  std::uint16_t echo_ident() const { return load_be16(buf_, 4); }
  std::uint16_t echo_seq() const { return load_be16(buf_, 6); }
  // Error messages have type < 128 (RFC 4443 2.1).
  bool is_error() const { return buf_[0] < 128; }

  bool verify_checksum(const Ipv6Addr& src, const Ipv6Addr& dst) const;

  Bytes bytes() const { return buf_; }
  Bytes payload() const { return buf_.subspan(kHeaderLen); }

 protected:
  explicit Icmpv6Packet(Bytes b) : buf_(b) {}
  Bytes buf_;
};

class Icmpv6PacketMut : public Icmpv6Packet {
 public:
  Icmpv6PacketMut() = default;
  static Parsed<Icmpv6PacketMut> parse(MutBytes b) noexcept;

  void set_echo_ident(std::uint16_t id);
  void adjust_for_address_change(const Ipv6Addr& old_addr, const Ipv6Addr& new_addr);
  void fill_checksum(const Ipv6Addr& src, const Ipv6Addr& dst);
  MutBytes payload_mut() const { return mut().subspan(kHeaderLen); }

 private:
  explicit Icmpv6PacketMut(MutBytes b) : Icmpv6Packet(b) {}
  MutBytes mut() const { return {const_cast<std::uint8_t*>(buf_.data()), buf_.size()}; }
};

struct Icmpv6Repr {
  // An error message must fit the IPv6 minimum MTU (RFC 4443 2.4(c)).
  static constexpr std::size_t kMaxErrorQuote = 1280 - 40 - kIcmpHeaderLen;

  Icmpv6Type type = Icmpv6Type::EchoRequest;
  std::uint8_t code = 0;
  std::uint32_t rest_of_header = 0;
  Bytes data;  // must outlive the repr

  static Icmpv6Repr echo_request(std::uint16_t ident, std::uint16_t seq, Bytes data);
  static Icmpv6Repr echo_reply(std::uint16_t ident, std::uint16_t seq, Bytes data);
  static Icmpv6Repr dest_unreachable(std::uint8_t code, Bytes original_ip_packet);

  std::uint16_t echo_ident() const { return static_cast<std::uint16_t>(rest_of_header >> 16); }
  std::uint16_t echo_seq() const { return static_cast<std::uint16_t>(rest_of_header); }

  static Parsed<Icmpv6Repr> parse(const Icmpv6Packet& p, const Ipv6Addr& src, const Ipv6Addr& dst,
                                  bool verify_checksum = true) noexcept;
  std::size_t buffer_len() const { return kIcmpHeaderLen + data.size(); }
  // As Icmpv4Repr::emit, with the checksum over the IPv6 pseudo-header.
  std::size_t emit(MutBytes buf, const Ipv6Addr& src, const Ipv6Addr& dst) const noexcept;
};

}  // namespace vnet::wire
