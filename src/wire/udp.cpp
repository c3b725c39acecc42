#include "wire/udp.hpp"

#include "wire/checksum.hpp"
#include "wire/ip_protocol.hpp"

namespace vnet::wire {

namespace {

constexpr auto kProto = static_cast<std::uint8_t>(IpProtocol::Udp);

// A computed zero is sent as all-ones, because zero on the wire means
// "no checksum" (RFC 768).
constexpr std::uint16_t on_wire(std::uint16_t c) { return c == 0 ? 0xffff : c; }

std::uint16_t compute(Bytes datagram, const IpAddr& src, const IpAddr& dst) {
  return internet_checksum(datagram, pseudo_header(src, dst, kProto, static_cast<std::uint32_t>(datagram.size())));
}

}  // namespace

Parsed<UdpPacket> UdpPacket::parse(Bytes b) noexcept {
  if (b.size() < kHeaderLen) return ParseError::Truncated;
  UdpPacket p(b);
  if (p.length() < kHeaderLen) return ParseError::BadLength;
  if (p.length() > b.size()) return ParseError::Truncated;
  return UdpPacket(b.first(p.length()));
}

bool UdpPacket::verify_checksum(const IpAddr& src, const IpAddr& dst) const {
  if (checksum() == 0) return src.is_v4();
  return checksum_ok(buf_, pseudo_header(src, dst, kProto, length()));
}

Parsed<UdpPacketMut> UdpPacketMut::parse(MutBytes b) noexcept {
  auto ro = UdpPacket::parse(b);
  if (!ro) return ro.error();
  return UdpPacketMut(b.first(ro->length()));
}

void UdpPacketMut::store_updated_checksum(std::uint16_t c) { store_be16(mut(), 6, on_wire(c)); }

void UdpPacketMut::set_port(std::size_t off, std::uint16_t p) {
  const std::uint16_t old_p = load_be16(buf_, off);
  store_be16(mut(), off, p);
  if (checksum() != 0) store_updated_checksum(checksum_update16(checksum(), old_p, p));
}

void UdpPacketMut::set_src_port(std::uint16_t p) { set_port(0, p); }

void UdpPacketMut::set_dst_port(std::uint16_t p) { set_port(2, p); }

void UdpPacketMut::adjust_for_address_change(const IpAddr& old_addr, const IpAddr& new_addr) {
  if (checksum() == 0) return;
  // IPv4-mapped forms share their first 12 bytes, so diffing all 16 bytes
  // gives exactly the IPv4 delta.
  store_updated_checksum(checksum_update(checksum(), old_addr.bytes(), new_addr.bytes()));
}

void UdpPacketMut::fill_checksum(const IpAddr& src, const IpAddr& dst) {
  store_be16(mut(), 6, 0);
  store_be16(mut(), 6, on_wire(compute(buf_, src, dst)));
}

Parsed<UdpRepr> UdpRepr::parse(const UdpPacket& p, const IpAddr& src, const IpAddr& dst,
                               bool verify_checksum) noexcept {
  if (verify_checksum && !p.verify_checksum(src, dst)) return ParseError::BadChecksum;
  return UdpRepr{p.src_port(), p.dst_port(), static_cast<std::uint16_t>(p.length() - UdpPacket::kHeaderLen)};
}

std::size_t UdpRepr::emit(MutBytes buf, const IpAddr& src, const IpAddr& dst) const noexcept {
  const std::size_t total = buffer_len();
  if (total > 0xffff || buf.size() < total) return 0;
  store_be16(buf, 0, src_port);
  store_be16(buf, 2, dst_port);
  store_be16(buf, 4, static_cast<std::uint16_t>(total));
  store_be16(buf, 6, 0);
  store_be16(buf, 6, on_wire(compute(buf.first(total), src, dst)));
  return header_len();
}

}  // namespace vnet::wire
