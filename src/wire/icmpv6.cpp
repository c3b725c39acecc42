#include "wire/icmpv6.hpp"

#include <algorithm>
#include <cstring>

#include "wire/checksum.hpp"
#include "wire/dhcp.hpp"
#include "wire/ip_protocol.hpp"

namespace vnet::wire {

namespace {

constexpr std::size_t kOptHeader = 2;
constexpr std::size_t kLladdrOptLen = 8;       // type, len, 6-byte MAC
constexpr std::size_t kPrefixOptLen = 32;
constexpr std::size_t kMtuOptLen = 8;
constexpr std::size_t kListOptHeader = 8;      // type, len, reserved, lifetime

constexpr std::size_t round8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

std::size_t dnssl_payload_len(std::span<const std::string_view> names) {
  std::size_t n = 0;
  std::uint8_t scratch[256];
  for (auto name : names) n += dhcp_encode_domain(name, scratch);
  return n;
}

std::size_t options_len(const NdpOptionsRepr& o) {
  std::size_t n = 0;
  if (o.source_lladdr) n += kLladdrOptLen;
  if (o.target_lladdr) n += kLladdrOptLen;
  if (o.prefix) n += kPrefixOptLen;
  if (o.mtu) n += kMtuOptLen;
  if (!o.rdnss.empty()) n += kListOptHeader + 16 * o.rdnss.size();
  if (const std::size_t d = dnssl_payload_len(o.dnssl); d > 0) n += round8(kListOptHeader + d);
  return n;
}

// Writers below assume the caller checked the total length.
std::size_t put_lladdr(MutBytes out, std::uint8_t type, const MacAddr& mac) {
  out[0] = type;
  out[1] = 1;
  std::memcpy(out.data() + 2, mac.octets.data(), 6);
  return kLladdrOptLen;
}

std::size_t put_prefix(MutBytes out, const NdpPrefixInfo& p) {
  out[0] = ndp_opt::kPrefixInfo;
  out[1] = 4;
  out[2] = p.prefix_len;
  out[3] = p.flags;
  store_be32(out, 4, p.valid_lifetime);
  store_be32(out, 8, p.preferred_lifetime);
  store_be32(out, 12, 0);
  std::memcpy(out.data() + 16, p.prefix.octets.data(), 16);
  return kPrefixOptLen;
}

std::size_t put_mtu(MutBytes out, std::uint32_t mtu) {
  out[0] = ndp_opt::kMtu;
  out[1] = 1;
  store_be16(out, 2, 0);
  store_be32(out, 4, mtu);
  return kMtuOptLen;
}

std::size_t put_rdnss(MutBytes out, std::uint32_t lifetime, std::span<const Ipv6Addr> servers) {
  const std::size_t len = kListOptHeader + 16 * servers.size();
  out[0] = ndp_opt::kRdnss;
  out[1] = static_cast<std::uint8_t>(len / 8);
  store_be16(out, 2, 0);
  store_be32(out, 4, lifetime);
  std::size_t pos = kListOptHeader;
  for (const auto& s : servers) {
    std::memcpy(out.data() + pos, s.octets.data(), 16);
    pos += 16;
  }
  return len;
}

std::size_t put_dnssl(MutBytes out, std::uint32_t lifetime, std::span<const std::string_view> names) {
  std::size_t pos = kListOptHeader;
  for (auto name : names) pos += dhcp_encode_domain(name, out.subspan(pos));
  if (pos == kListOptHeader) return 0;
  const std::size_t len = round8(pos);
  std::memset(out.data() + pos, 0, len - pos);  // padding is zero bytes (RFC 8106 5.2)
  out[0] = ndp_opt::kDnssl;
  out[1] = static_cast<std::uint8_t>(len / 8);
  store_be16(out, 2, 0);
  store_be32(out, 4, lifetime);
  return len;
}

}  // namespace

Icmpv6Repr icmpv6_packet_too_big(std::uint32_t mtu, Bytes original_ip_packet) {
  const std::size_t quote = std::min(original_ip_packet.size(), Icmpv6Repr::kMaxErrorQuote);
  return {Icmpv6Type::PacketTooBig, 0, mtu, original_ip_packet.first(quote)};
}

std::optional<NdpOption> NdpOptionReader::next() noexcept {
  if (error_ || pos_ >= area_.size()) return std::nullopt;
  const std::size_t left = area_.size() - pos_;
  // Length 0 is invalid (RFC 4861 4.6) and would never advance.
  if (left < kOptHeader || area_[pos_ + 1] == 0 || std::size_t{area_[pos_ + 1]} * 8 > left) {
    error_ = true;
    return std::nullopt;
  }
  const std::size_t len = std::size_t{area_[pos_ + 1]} * 8;
  NdpOption o{area_[pos_], area_.subspan(pos_ + kOptHeader, len - kOptHeader)};
  pos_ += len;
  return o;
}

Parsed<NdpPrefixInfo> NdpPrefixInfo::parse(Bytes data) noexcept {
  if (data.size() != kDataLen || data[0] > 128) return ParseError::BadOption;
  NdpPrefixInfo p;
  p.prefix_len = data[0];
  p.flags = data[1];
  p.valid_lifetime = load_be32(data, 2);
  p.preferred_lifetime = load_be32(data, 6);
  p.prefix = Ipv6Addr::from_bytes(data.subspan(14, 16));
  return p;
}

Parsed<NdpRdnssView> NdpRdnssView::parse(Bytes data) noexcept {
  // 6 bytes (reserved, lifetime) then whole addresses; the option length
  // being a multiple of 8 makes (size - 6) a multiple of 8, not of 16.
  if (data.size() < 6 + 16 || (data.size() - 6) % 16 != 0) return ParseError::BadOption;
  return NdpRdnssView{load_be32(data, 2), data.subspan(6)};
}

std::size_t NdpMessage::fixed_len(Icmpv6Type t) noexcept {
  switch (t) {
    case Icmpv6Type::RouterSolicit: return 8;
    case Icmpv6Type::RouterAdvert: return 16;
    case Icmpv6Type::NeighborSolicit:
    case Icmpv6Type::NeighborAdvert: return 24;
    case Icmpv6Type::Redirect: return 40;
    default: return 0;
  }
}

Parsed<NdpMessage> NdpMessage::parse(Bytes b) noexcept {
  if (b.size() < kIcmpHeaderLen) return ParseError::Truncated;
  const std::size_t fixed = fixed_len(static_cast<Icmpv6Type>(b[0]));
  if (fixed == 0) return ParseError::Unsupported;
  if (b.size() < fixed) return ParseError::Truncated;
  if (b[1] != 0) return ParseError::BadOption;
  NdpOptionReader r(b.subspan(fixed));
  while (r.next()) {
  }
  if (r.error()) return ParseError::BadOption;
  return NdpMessage(b, fixed);
}

std::optional<NdpOption> NdpMessage::find(std::uint8_t type) const noexcept {
  NdpOptionReader r(options());
  while (auto o = r.next()) {
    if (o->type == type) return o;
  }
  return std::nullopt;
}

std::optional<MacAddr> NdpMessage::lladdr(std::uint8_t type) const {
  auto o = find(type);
  if (!o || o->data.size() != 6) return std::nullopt;
  return MacAddr::from_bytes(o->data);
}

std::size_t NdpRepr::buffer_len() const noexcept {
  const std::size_t fixed = NdpMessage::fixed_len(type);
  return fixed == 0 ? 0 : fixed + options_len(options);
}

std::size_t NdpRepr::emit(MutBytes buf, const Ipv6Addr& src, const Ipv6Addr& dst) const noexcept {
  const std::size_t fixed = NdpMessage::fixed_len(type);
  const std::size_t len = buffer_len();
  if (fixed == 0 || buf.size() < len) return 0;
  std::memset(buf.data(), 0, fixed);
  buf[0] = static_cast<std::uint8_t>(type);
  switch (type) {
    case Icmpv6Type::RouterAdvert:
      buf[4] = cur_hop_limit;
      buf[5] = ra_flags;
      store_be16(buf, 6, router_lifetime);
      store_be32(buf, 8, reachable_time);
      store_be32(buf, 12, retrans_timer);
      break;
    case Icmpv6Type::NeighborAdvert:
      buf[4] = na_flags;
      std::memcpy(buf.data() + 8, target.octets.data(), 16);
      break;
    case Icmpv6Type::NeighborSolicit: std::memcpy(buf.data() + 8, target.octets.data(), 16); break;
    case Icmpv6Type::Redirect:
      std::memcpy(buf.data() + 8, target.octets.data(), 16);
      std::memcpy(buf.data() + 24, redirect_dest.octets.data(), 16);
      break;
    default: break;
  }
  std::size_t pos = fixed;
  const NdpOptionsRepr& o = options;
  if (o.source_lladdr) pos += put_lladdr(buf.subspan(pos), ndp_opt::kSourceLinkAddr, *o.source_lladdr);
  if (o.target_lladdr) pos += put_lladdr(buf.subspan(pos), ndp_opt::kTargetLinkAddr, *o.target_lladdr);
  if (o.prefix) pos += put_prefix(buf.subspan(pos), *o.prefix);
  if (o.mtu) pos += put_mtu(buf.subspan(pos), *o.mtu);
  if (!o.rdnss.empty()) pos += put_rdnss(buf.subspan(pos), o.rdnss_lifetime, o.rdnss);
  if (!o.dnssl.empty()) pos += put_dnssl(buf.subspan(pos), o.dnssl_lifetime, o.dnssl);
  const std::uint32_t pseudo =
      pseudo_header_v6(src, dst, static_cast<std::uint8_t>(IpProtocol::Icmpv6), static_cast<std::uint32_t>(pos));
  store_be16(buf, 2, internet_checksum(buf.first(pos), pseudo));
  return pos;
}

Ipv6Addr solicited_node(const Ipv6Addr& addr) {
  Ipv6Addr a;
  a.octets = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, addr.octets[13], addr.octets[14], addr.octets[15]};
  return a;
}

MacAddr ipv6_multicast_mac(const Ipv6Addr& group) {
  return MacAddr{{0x33, 0x33, group.octets[12], group.octets[13], group.octets[14], group.octets[15]}};
}

Ipv6Addr link_local_from_mac(const MacAddr& mac) {
  Ipv6Addr a;
  a.octets[0] = 0xfe;
  a.octets[1] = 0x80;
  a.octets[8] = static_cast<std::uint8_t>(mac.octets[0] ^ 0x02);  // flip the universal/local bit
  a.octets[9] = mac.octets[1];
  a.octets[10] = mac.octets[2];
  a.octets[11] = 0xff;
  a.octets[12] = 0xfe;
  a.octets[13] = mac.octets[3];
  a.octets[14] = mac.octets[4];
  a.octets[15] = mac.octets[5];
  return a;
}

Ipv6Addr all_nodes_multicast() {
  Ipv6Addr a;
  a.octets[0] = 0xff;
  a.octets[1] = 0x02;
  a.octets[15] = 1;
  return a;
}

Ipv6Addr all_routers_multicast() {
  Ipv6Addr a = all_nodes_multicast();
  a.octets[15] = 2;
  return a;
}

}  // namespace vnet::wire
