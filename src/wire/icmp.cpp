#include "wire/icmp.hpp"

#include <algorithm>
#include <cstring>

#include "wire/checksum.hpp"
#include "wire/ip_protocol.hpp"
#include "wire/ipv4.hpp"

namespace vnet::wire {

namespace {

constexpr auto kProtoV6 = static_cast<std::uint8_t>(IpProtocol::Icmpv6);

constexpr std::uint32_t echo_word(std::uint16_t ident, std::uint16_t seq) {
  return (std::uint32_t{ident} << 16) | seq;
}

std::uint32_t pseudo_v6(const Ipv6Addr& src, const Ipv6Addr& dst, std::size_t len) {
  return pseudo_header_v6(src, dst, kProtoV6, static_cast<std::uint32_t>(len));
}

// Copies data first so that data may alias buf (e.g. a reply built over the
// request it answers), then writes the header with a zero checksum.
bool write_message(MutBytes buf, std::uint8_t type, std::uint8_t code, std::uint32_t rest, Bytes data) {
  if (buf.size() < kIcmpHeaderLen + data.size()) return false;
  if (!data.empty()) std::memmove(buf.data() + kIcmpHeaderLen, data.data(), data.size());
  buf[0] = type;
  buf[1] = code;
  store_be16(buf, 2, 0);
  store_be32(buf, 4, rest);
  return true;
}

}  // namespace

// ---- ICMPv4 ----

Parsed<Icmpv4Packet> Icmpv4Packet::parse(Bytes b) noexcept {
  if (b.size() < kHeaderLen) return ParseError::Truncated;
  return Icmpv4Packet(b);
}

bool Icmpv4Packet::is_error() const {
  switch (type()) {
    case Icmpv4Type::DestUnreachable:
    case Icmpv4Type::Redirect:
    case Icmpv4Type::TimeExceeded:
    case Icmpv4Type::ParamProblem:
      return true;
    default:
      return false;
  }
}

bool Icmpv4Packet::verify_checksum() const { return checksum_ok(buf_); }

Parsed<Icmpv4PacketMut> Icmpv4PacketMut::parse(MutBytes b) noexcept {
  auto ro = Icmpv4Packet::parse(b);
  if (!ro) return ro.error();
  return Icmpv4PacketMut(b);
}

void Icmpv4PacketMut::set_echo_ident(std::uint16_t id) {
  const std::uint16_t old_id = echo_ident();
  store_be16(mut(), 4, id);
  store_be16(mut(), 2, checksum_update16(checksum(), old_id, id));
}

void Icmpv4PacketMut::fill_checksum() {
  store_be16(mut(), 2, 0);
  store_be16(mut(), 2, internet_checksum(buf_));
}

Icmpv4Repr Icmpv4Repr::echo_request(std::uint16_t ident, std::uint16_t seq, Bytes data) {
  return {Icmpv4Type::EchoRequest, 0, echo_word(ident, seq), data};
}

Icmpv4Repr Icmpv4Repr::echo_reply(std::uint16_t ident, std::uint16_t seq, Bytes data) {
  return {Icmpv4Type::EchoReply, 0, echo_word(ident, seq), data};
}

Icmpv4Repr Icmpv4Repr::dest_unreachable(std::uint8_t code, Bytes original_ip_packet,
                                        std::uint16_t next_hop_mtu) {
  // An unparseable original still gets the conventional 28 bytes quoted.
  std::size_t quote = Ipv4Packet::kMinHeaderLen + 8;
  if (auto ip = Ipv4Packet::parse(original_ip_packet)) quote = ip->header_len() + 8;
  quote = std::min(quote, original_ip_packet.size());
  return {Icmpv4Type::DestUnreachable, code, next_hop_mtu, original_ip_packet.first(quote)};
}

Parsed<Icmpv4Repr> Icmpv4Repr::parse(const Icmpv4Packet& p, bool verify_checksum) noexcept {
  if (verify_checksum && !p.verify_checksum()) return ParseError::BadChecksum;
  return Icmpv4Repr{p.type(), p.code(), p.rest_of_header(), p.payload()};
}

std::size_t Icmpv4Repr::emit(MutBytes buf) const noexcept {
  if (!write_message(buf, static_cast<std::uint8_t>(type), code, rest_of_header, data)) return 0;
  const std::size_t len = buffer_len();
  store_be16(buf, 2, internet_checksum(buf.first(len)));
  return len;
}

// ---- ICMPv6 ----

Parsed<Icmpv6Packet> Icmpv6Packet::parse(Bytes b) noexcept {
  if (b.size() < kHeaderLen) return ParseError::Truncated;
  return Icmpv6Packet(b);
}

bool Icmpv6Packet::verify_checksum(const Ipv6Addr& src, const Ipv6Addr& dst) const {
  return checksum_ok(buf_, pseudo_v6(src, dst, buf_.size()));
}

Parsed<Icmpv6PacketMut> Icmpv6PacketMut::parse(MutBytes b) noexcept {
  auto ro = Icmpv6Packet::parse(b);
  if (!ro) return ro.error();
  return Icmpv6PacketMut(b);
}

void Icmpv6PacketMut::set_echo_ident(std::uint16_t id) {
  const std::uint16_t old_id = echo_ident();
  store_be16(mut(), 4, id);
  store_be16(mut(), 2, checksum_update16(checksum(), old_id, id));
}

void Icmpv6PacketMut::adjust_for_address_change(const Ipv6Addr& old_addr, const Ipv6Addr& new_addr) {
  store_be16(mut(), 2, checksum_update(checksum(), old_addr.octets, new_addr.octets));
}

void Icmpv6PacketMut::fill_checksum(const Ipv6Addr& src, const Ipv6Addr& dst) {
  store_be16(mut(), 2, 0);
  store_be16(mut(), 2, internet_checksum(buf_, pseudo_v6(src, dst, buf_.size())));
}

Icmpv6Repr Icmpv6Repr::echo_request(std::uint16_t ident, std::uint16_t seq, Bytes data) {
  return {Icmpv6Type::EchoRequest, 0, echo_word(ident, seq), data};
}

Icmpv6Repr Icmpv6Repr::echo_reply(std::uint16_t ident, std::uint16_t seq, Bytes data) {
  return {Icmpv6Type::EchoReply, 0, echo_word(ident, seq), data};
}

Icmpv6Repr Icmpv6Repr::dest_unreachable(std::uint8_t code, Bytes original_ip_packet) {
  const std::size_t quote = std::min(original_ip_packet.size(), kMaxErrorQuote);
  return {Icmpv6Type::DestUnreachable, code, 0, original_ip_packet.first(quote)};
}

Parsed<Icmpv6Repr> Icmpv6Repr::parse(const Icmpv6Packet& p, const Ipv6Addr& src, const Ipv6Addr& dst,
                                     bool verify_checksum) noexcept {
  if (verify_checksum && !p.verify_checksum(src, dst)) return ParseError::BadChecksum;
  return Icmpv6Repr{p.type(), p.code(), p.rest_of_header(), p.payload()};
}

std::size_t Icmpv6Repr::emit(MutBytes buf, const Ipv6Addr& src, const Ipv6Addr& dst) const noexcept {
  if (!write_message(buf, static_cast<std::uint8_t>(type), code, rest_of_header, data)) return 0;
  const std::size_t len = buffer_len();
  store_be16(buf, 2, internet_checksum(buf.first(len), pseudo_v6(src, dst, len)));
  return len;
}

}  // namespace vnet::wire
