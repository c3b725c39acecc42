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

namespace {

// Type-length-value options of hop-by-hop and destination-options headers
// (RFC 8200 4.2): Pad1 is a single byte, every other option has a length.
// The two high bits of an unknown type say what to do; only "skip" (00) is
// something a translator can honour.
bool options_acceptable(Bytes opts, ParseError& why) noexcept {
  std::size_t at = 0;
  while (at < opts.size()) {
    const std::uint8_t type = opts[at];
    if (type == 0) {  // Pad1
      ++at;
      continue;
    }
    if (at + 2 > opts.size() || at + 2 + opts[at + 1] > opts.size()) {
      why = ParseError::BadOption;
      return false;
    }
    if (type != 1 && (type & 0xc0) != 0) {  // not PadN, and not "skip over"
      why = ParseError::Unsupported;
      return false;
    }
    at += 2 + opts[at + 1];
  }
  return true;
}

}  // namespace

Parsed<Ipv6Payload> walk_extension_headers(const Ipv6Packet& p) noexcept {
  Ipv6Payload out;
  Bytes rest = p.payload();
  IpProtocol next = p.next_header();
  std::size_t headers = 0;
  for (;;) {
    switch (next) {
      case IpProtocol::HopByHop:
      case IpProtocol::Ipv6Opts:
      case IpProtocol::Ipv6Route:
      case IpProtocol::Ipv6Frag: break;
      default:
        out.protocol = next;
        out.l4 = rest;
        return out;
    }
    if (next == IpProtocol::HopByHop && headers != 0) return ParseError::BadOption;  // RFC 8200 4.3: first only
    if (++headers > Ipv6Payload::kMaxExtensionHeaders) return ParseError::BadOption;
    if (rest.size() < 8) return ParseError::Truncated;
    // Every extension header here is a multiple of 8 bytes; the fragment
    // header has a fixed 8 (its second byte is reserved, not a length).
    const std::size_t len = next == IpProtocol::Ipv6Frag ? 8 : (std::size_t{rest[1]} + 1) * 8;
    if (len > rest.size()) return ParseError::Truncated;
    if (out.extension_len + len > Ipv6Payload::kMaxExtensionBytes) return ParseError::BadOption;
    const Bytes header = rest.first(len);
    ParseError why{};
    switch (next) {
      case IpProtocol::HopByHop:
      case IpProtocol::Ipv6Opts:
        if (!options_acceptable(header.subspan(2), why)) return why;
        break;
      case IpProtocol::Ipv6Route:
        // Segments left (byte 3) not zero asks us to route the packet on.
        if (header[3] != 0) return ParseError::Unsupported;
        break;
      case IpProtocol::Ipv6Frag: {
        if (out.has_fragment_header) return ParseError::BadOption;  // one per packet
        const std::uint16_t off_flags = load_be16(header, 2);
        out.has_fragment_header = true;
        out.fragment_offset = static_cast<std::uint16_t>(off_flags >> 3);
        out.more_fragments = (off_flags & 1) != 0;
        out.fragment_id = load_be32(header, 4);
        break;
      }
      default: break;
    }
    next = static_cast<IpProtocol>(header[0]);
    rest = rest.subspan(len);
    out.extension_len += len;
    if (out.fragment_offset != 0) {
      // A later fragment carries data, not headers: nothing more to walk.
      out.protocol = next;
      out.l4 = rest;
      return out;
    }
  }
}

}  // namespace vnet::wire
