#include "wire/ipv4.hpp"

#include <cstring>

#include "wire/checksum.hpp"

namespace vnet::wire {

Parsed<Ipv4Packet> Ipv4Packet::parse(Bytes b) noexcept {
  if (b.size() < kMinHeaderLen) return ParseError::Truncated;
  Ipv4Packet p(b);
  if (p.version() != 4) return ParseError::BadVersion;
  if (p.header_len() < kMinHeaderLen) return ParseError::BadHeaderLength;
  if (p.header_len() > b.size()) return ParseError::Truncated;
  if (p.total_len() < p.header_len()) return ParseError::BadLength;
  if (p.total_len() > b.size()) return ParseError::Truncated;
  return Ipv4Packet(b.first(p.total_len()));
}

bool Ipv4Packet::verify_checksum() const { return checksum_ok(header()); }

Parsed<Ipv4PacketMut> Ipv4PacketMut::parse(MutBytes b) noexcept {
  auto ro = Ipv4Packet::parse(b);
  if (!ro) return ro.error();
  return Ipv4PacketMut(b.first(ro->total_len()));
}

void Ipv4PacketMut::set_addr(std::size_t off, Ipv4Addr a) {
  const std::uint32_t old_v = load_be32(buf_, off);
  std::memcpy(mut().data() + off, a.octets.data(), 4);
  set_checksum(checksum_update32(checksum(), old_v, a.to_u32()));
}

void Ipv4PacketMut::set_src(Ipv4Addr a) { set_addr(12, a); }

void Ipv4PacketMut::set_dst(Ipv4Addr a) { set_addr(16, a); }

void Ipv4PacketMut::set_ttl(std::uint8_t ttl) {
  // TTL shares a 16-bit word with the protocol field.
  const std::uint16_t old_word = load_be16(buf_, 8);
  mut()[8] = ttl;
  set_checksum(checksum_update16(checksum(), old_word, load_be16(buf_, 8)));
}

void Ipv4PacketMut::fill_checksum() {
  set_checksum(0);
  set_checksum(internet_checksum(header()));
}

Parsed<Ipv4Repr> Ipv4Repr::parse(const Ipv4Packet& p, bool verify_checksum) noexcept {
  if (verify_checksum && !p.verify_checksum()) return ParseError::BadChecksum;
  return Ipv4Repr{p.src(),
                  p.dst(),
                  p.protocol(),
                  p.ttl(),
                  static_cast<std::uint16_t>(p.total_len() - p.header_len()),
                  p.tos(),
                  p.ident(),
                  p.dont_fragment()};
}

std::size_t Ipv4Repr::emit(MutBytes buf) const noexcept {
  constexpr std::size_t kLen = header_len();
  if (buf.size() < kLen || std::size_t{payload_len} + kLen > 0xffff) return 0;
  buf[0] = 0x45;
  buf[1] = tos;
  store_be16(buf, 2, static_cast<std::uint16_t>(kLen + payload_len));
  store_be16(buf, 4, ident);
  store_be16(buf, 6, dont_fragment ? 0x4000 : 0);
  buf[8] = ttl;
  buf[9] = static_cast<std::uint8_t>(protocol);
  store_be16(buf, 10, 0);
  std::memcpy(buf.data() + 12, src.octets.data(), 4);
  std::memcpy(buf.data() + 16, dst.octets.data(), 4);
  store_be16(buf, 10, internet_checksum(buf.first(kLen)));
  return kLen;
}

}  // namespace vnet::wire
