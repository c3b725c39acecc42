// IPv6 fixed header (RFC 8200) and a bounded walk over its extension
// headers (walk_extension_headers below).
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

// What lies behind a packet's extension headers (RFC 8200 4).
//
// The walk accepts hop-by-hop options (first only), destination options,
// routing headers with no segments left, and fragment headers; it stops at
// the first other next-header value, which is the upper-layer protocol (TCP,
// UDP, ICMPv6, or something the caller counts as unsupported). Bounds against
// hostile input: at most kMaxExtensionHeaders headers and kMaxExtensionBytes
// bytes of them, every length checked against the payload. Options inside
// hop-by-hop and destination-options headers are walked too: padding and
// options whose type says "skip if unrecognized" pass; any other option
// (e.g. a jumbo payload) is Unsupported, as RFC 8200 4.2 tells a node that
// does not know it to discard the packet.
struct Ipv6Payload {
  static constexpr std::size_t kMaxExtensionHeaders = 8;
  static constexpr std::size_t kMaxExtensionBytes = 1024;

  IpProtocol protocol = IpProtocol::Ipv6NoNxt;  // the upper-layer protocol
  Bytes l4;                                     // its bytes, to the end of the packet
  std::size_t extension_len = 0;                // bytes of extension headers before l4
  // A fragment header was present. An atomic fragment (offset 0, no more
  // fragments, RFC 6946) is a whole packet; is_fragment() says otherwise.
  bool has_fragment_header = false;
  std::uint16_t fragment_offset = 0;  // in 8-byte units
  bool more_fragments = false;
  std::uint32_t fragment_id = 0;

  bool is_fragment() const { return has_fragment_header && (fragment_offset != 0 || more_fragments); }
};

// Errors: Truncated (a header runs past the payload), BadOption (malformed
// option TLVs, hop-by-hop not first, too many or too long headers),
// Unsupported (routing header with segments left, an option to discard).
Parsed<Ipv6Payload> walk_extension_headers(const Ipv6Packet& p) noexcept;

}  // namespace vnet::wire
