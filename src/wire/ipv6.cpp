#include "wire/ipv6.hpp"

#include <cstring>

namespace vnet::wire {

Parsed<Ipv6Packet> Ipv6Packet::parse(Bytes b) noexcept {
  if (b.size() < kHeaderLen) return ParseError::Truncated;
  Ipv6Packet p(b);
  if (p.version() != 6) return ParseError::BadVersion;
  if (p.payload_len() == 0 && p.next_header() == IpProtocol::HopByHop) {
    return ParseError::Unsupported;  // possibly a jumbogram; its length lives in an option
  }
  const std::size_t total = kHeaderLen + p.payload_len();
  if (total > b.size()) return ParseError::Truncated;
  // IPv4-mapped addresses never belong on the wire (RFC 4291 2.5.5.2), and
  // IpAddr keeps IPv4 in exactly that form: such a packet would be taken for
  // IPv4 by everything downstream (pseudo-header, UDP's "no checksum",
  // policy, guest identity).
  if (p.src().is_v4_mapped() || p.dst().is_v4_mapped()) return ParseError::Unsupported;
  return Ipv6Packet(b.first(total));
}

Parsed<Ipv6PacketMut> Ipv6PacketMut::parse(MutBytes b) noexcept {
  auto ro = Ipv6Packet::parse(b);
  if (!ro) return ro.error();
  return Ipv6PacketMut(b.first(ro->bytes().size()));
}

void Ipv6PacketMut::set_src(const Ipv6Addr& a) { std::memcpy(mut().data() + 8, a.octets.data(), 16); }

void Ipv6PacketMut::set_dst(const Ipv6Addr& a) { std::memcpy(mut().data() + 24, a.octets.data(), 16); }

Ipv6Repr Ipv6Repr::parse(const Ipv6Packet& p) noexcept {
  return Ipv6Repr{p.src(),         p.dst(),           p.next_header(), p.hop_limit(),
                  p.payload_len(), p.traffic_class(), p.flow_label()};
}

std::size_t Ipv6Repr::emit(MutBytes buf) const noexcept {
  if (buf.size() < header_len()) return 0;
  const std::uint32_t first = (std::uint32_t{6} << 28) | (std::uint32_t{traffic_class} << 20) |
                              (flow_label & 0x000fffff);
  store_be32(buf, 0, first);
  store_be16(buf, 4, payload_len);
  buf[6] = static_cast<std::uint8_t>(next_header);
  buf[7] = hop_limit;
  std::memcpy(buf.data() + 8, src.octets.data(), 16);
  std::memcpy(buf.data() + 24, dst.octets.data(), 16);
  return header_len();
}

}  // namespace vnet::wire
