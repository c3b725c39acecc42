#include "nat/ndp.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string_view>

#include "nat/neigh.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv6.hpp"

namespace vnet::nat {

using namespace vnet::wire;

namespace {

constexpr std::size_t kL4Offset = EthernetFrame::kHeaderLen + Ipv6Packet::kHeaderLen;
// RFC 4861 10: MIN_DELAY_BETWEEN_RAS, MAX_INITIAL_RTR_ADVERT_INTERVAL, and
// the default Min/MaxRtrAdvInterval.
constexpr Nanos kMinDelayBetweenRas = 3 * kSeconds;
constexpr Nanos kInitialRaInterval = 16 * kSeconds;
constexpr Nanos kMinRaInterval = 200 * kSeconds;
constexpr Nanos kMaxRaInterval = 600 * kSeconds;

bool is_solicited_node_group(const Ipv6Addr& a) {
  static const std::uint8_t prefix[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
  return std::equal(std::begin(prefix), std::end(prefix), a.octets.begin());
}

Ipv6Addr dhcp6_servers_group() {
  Ipv6Addr a;
  a.octets[0] = 0xff;
  a.octets[1] = 0x02;
  a.octets[13] = 0x01;
  a.octets[15] = 0x02;
  return a;
}

}  // namespace

Ipv6ControlOut::Ipv6ControlOut(const MacAddr& mac, Sink sink)
    : mac_(mac), sink_(std::move(sink)), frame_(new std::uint8_t[kCapacity]) {}

MutBytes Ipv6ControlOut::payload() { return {frame_.get() + kL4Offset, kCapacity - kL4Offset}; }

void Ipv6ControlOut::send(const MacAddr& dst_mac, const Ipv6Addr& src, const Ipv6Addr& dst, IpProtocol proto,
                          std::uint8_t hop_limit, std::size_t len) {
  const MutBytes frame(frame_.get(), kCapacity);
  EthernetRepr{dst_mac, mac_, EtherType::Ipv6, std::nullopt}.emit(frame);
  Ipv6Repr ip;
  ip.src = src;
  ip.dst = dst;
  ip.next_header = proto;
  ip.hop_limit = hop_limit;
  ip.payload_len = static_cast<std::uint16_t>(len);
  ip.emit(frame.subspan(EthernetFrame::kHeaderLen));
  sink_(frame.first(kL4Offset + len));
}

NdpServer::NdpServer(EventLoop& loop, Ipv6ControlOut& out, NeighTable& neigh, NatCounters& counters,
                     Ipv6Settings s)
    : out_(out),
      neigh_(neigh),
      counters_(counters),
      s_(std::move(s)),
      link_local_(link_local_from_mac(s_.mac)),
      ra_timer_(loop, [this] { on_ra_timer(); }),
      rng_(static_cast<std::uint32_t>(monotonic_now())) {
  // The first unsolicited RA goes out soon; guests that boot later ask
  // with an RS anyway.
  if (s_.advertise) ra_timer_.arm_in(kSeconds);
}

NdpServer::~NdpServer() = default;

bool NdpServer::is_own(const Ipv6Addr& a) const { return a == s_.gateway || a == s_.dns || a == link_local_; }

bool NdpServer::listens_to(const MacAddr& dst) const {
  for (const Ipv6Addr& group : {all_nodes_multicast(), all_routers_multicast(), dhcp6_servers_group(),
                                solicited_node(s_.gateway), solicited_node(s_.dns), solicited_node(link_local_)}) {
    if (dst == ipv6_multicast_mac(group)) return true;
  }
  return false;
}

void NdpServer::on_message(PortId port, const MacAddr& src_mac, const Ipv6Addr& src, const Ipv6Addr& dst,
                           std::uint8_t hop_limit, Bytes icmp) {
  auto pkt = Icmpv6Packet::parse(icmp);
  if (!pkt) {
    counters_.drop_malformed++;
    return;
  }
  if (!pkt->verify_checksum(src, dst)) {
    counters_.drop_bad_checksum++;
    return;
  }
  auto m = NdpMessage::parse(icmp);
  // Hop limit 255 proves the message was not forwarded (RFC 4861 6.1, 7.1).
  if (!m || hop_limit != kNdpHopLimit) {
    counters_.drop_ndp_invalid++;
    return;
  }
  switch (m->type()) {
    case Icmpv6Type::RouterSolicit:
      if (!s_.advertise) return;
      if (!src.is_unspecified() &&
          neigh_.check_source(port, src_mac, IpAddr(src), monotonic_now()) != NeighTable::Verdict::Ok)
        return;
      on_router_solicit(src_mac, src, *m);
      return;
    case Icmpv6Type::NeighborSolicit: on_neighbor_solicit(port, src_mac, src, dst, *m); return;
    case Icmpv6Type::NeighborAdvert: on_neighbor_advert(port, src_mac, src, dst, *m); return;
    default:
      // RA or redirect: only the gateway routes on this network.
      counters_.ndp_guest_router_msgs++;
      return;
  }
}

// A link-layer address option must name the frame's sender: a guest may
// not point the gateway at someone else's MAC.
bool NdpServer::link_option_ok(const NdpMessage& m, std::uint8_t type, const MacAddr& src_mac) {
  auto o = m.find(type);
  if (!o || o->data.size() != 6 || MacAddr::from_bytes(o->data) == src_mac) return true;
  counters_.drop_spoofed++;
  return false;
}

void NdpServer::on_router_solicit(const MacAddr& src_mac, const Ipv6Addr& src, const NdpMessage& m) {
  // RFC 4861 6.1.1: no source link-layer option from the unspecified address.
  if (src.is_unspecified() && m.find(ndp_opt::kSourceLinkAddr)) {
    counters_.drop_ndp_invalid++;
    return;
  }
  if (!link_option_ok(m, ndp_opt::kSourceLinkAddr, src_mac)) return;
  if (src.is_unspecified()) {
    advertise();  // no address to answer to: all nodes, rate-limited
    return;
  }
  // Unicast to the soliciting guest: it hears at once, the others are not
  // disturbed, and one guest's solicitations cannot flood the network.
  send_router_advert(src_mac, src);
}

void NdpServer::on_neighbor_solicit(PortId port, const MacAddr& src_mac, const Ipv6Addr& src, const Ipv6Addr& dst,
                                    const NdpMessage& m) {
  const Ipv6Addr target = m.target();
  const bool dad = src.is_unspecified();
  // RFC 4861 7.1.1.
  if (target.is_multicast() || (dad && (!is_solicited_node_group(dst) || m.find(ndp_opt::kSourceLinkAddr)))) {
    counters_.drop_ndp_invalid++;
    return;
  }
  if (!dad && neigh_.check_source(port, src_mac, IpAddr(src), monotonic_now()) != NeighTable::Verdict::Ok) return;
  if (!link_option_ok(m, ndp_opt::kSourceLinkAddr, src_mac)) return;
  if (!is_own(target)) return;  // another guest's address: that guest answers
  NdpRepr na;
  na.type = Icmpv6Type::NeighborAdvert;
  na.target = target;
  na.options.target_lladdr = s_.mac;
  if (dad) {
    // A guest probing one of the gateway's addresses: defend it to all
    // nodes (RFC 4861 7.2.4), so the guest's DAD fails.
    na.na_flags = kNaFlagRouter | kNaFlagOverride;
    send_ndp(ipv6_multicast_mac(all_nodes_multicast()), target, all_nodes_multicast(), na);
  } else {
    na.na_flags = kNaFlagRouter | kNaFlagSolicited | kNaFlagOverride;
    send_ndp(src_mac, target, src, na);
  }
  counters_.ndp_na_sent++;
}

void NdpServer::on_neighbor_advert(PortId port, const MacAddr& src_mac, const Ipv6Addr& src, const Ipv6Addr& dst,
                                   const NdpMessage& m) {
  const Ipv6Addr target = m.target();
  // RFC 4861 7.1.2 (and an NA always comes from an address of the sender).
  if (target.is_multicast() || src.is_unspecified() || (dst.is_multicast() && (m.na_flags() & kNaFlagSolicited))) {
    counters_.drop_ndp_invalid++;
    return;
  }
  const Nanos now = monotonic_now();
  if (neigh_.check_source(port, src_mac, IpAddr(src), now) != NeighTable::Verdict::Ok) return;
  if (!link_option_ok(m, ndp_opt::kTargetLinkAddr, src_mac)) return;
  if (is_own(target)) {
    counters_.drop_spoofed++;  // a guest claiming the gateway's address
    return;
  }
  // The announced address becomes the sender's, unless another guest holds
  // it (then check_source counts the drop and nothing changes).
  (void)neigh_.check_source(port, src_mac, IpAddr(target), now);
}

void NdpServer::solicit(const Ipv6Addr& target) {
  const Nanos now = monotonic_now();
  if (now - solicit_window_ >= kSeconds) {
    solicit_window_ = now;
    solicits_in_window_ = 0;
  }
  if (solicits_in_window_ >= kMaxSolicitsPerSecond) return;
  solicits_in_window_++;
  NdpRepr ns;
  ns.type = Icmpv6Type::NeighborSolicit;
  ns.target = target;
  ns.options.source_lladdr = s_.mac;
  const Ipv6Addr group = solicited_node(target);
  send_ndp(ipv6_multicast_mac(group), target.is_link_local() ? link_local_ : s_.gateway, group, ns);
  counters_.ndp_ns_sent++;
}

void NdpServer::advertise() {
  // All-nodes RAs are spaced by MIN_DELAY_BETWEEN_RAS (RFC 4861 6.2.6), so
  // solicitations from the unspecified address cannot flood the network.
  const Nanos now = monotonic_now();
  if (last_multicast_ra_ != 0 && now - last_multicast_ra_ < kMinDelayBetweenRas) return;
  last_multicast_ra_ = now;
  send_router_advert(ipv6_multicast_mac(all_nodes_multicast()), all_nodes_multicast());
}

void NdpServer::on_ra_timer() {
  advertise();
  Nanos next;
  if (initial_ras_left_ > 0) {
    --initial_ras_left_;
    next = kInitialRaInterval;
  } else {
    next = std::uniform_int_distribution<Nanos>(kMinRaInterval, kMaxRaInterval)(rng_);
  }
  ra_timer_.arm_in(next);
}

void NdpServer::send_router_advert(const MacAddr& dst_mac, const Ipv6Addr& dst) {
  const Ipv6Addr dns[] = {s_.dns};
  const std::string_view search[] = {s_.domain};
  NdpRepr ra;
  ra.type = Icmpv6Type::RouterAdvert;
  ra.cur_hop_limit = 64;
  ra.ra_flags = static_cast<std::uint8_t>((s_.managed ? kRaFlagManaged : 0) | (s_.other ? kRaFlagOther : 0));
  ra.router_lifetime = s_.router ? kRouterLifetimeS : 0;
  ra.options.source_lladdr = s_.mac;
  // Autonomous configuration works on a /64 only (RFC 4862 5.5.3).
  const std::uint8_t prefix_flags =
      static_cast<std::uint8_t>(kPrefixFlagOnLink | (s_.prefix_len == 64 ? kPrefixFlagAuto : 0));
  ra.options.prefix = NdpPrefixInfo{s_.prefix_len, prefix_flags, kPrefixValidS, kPrefixPreferredS, s_.prefix};
  ra.options.mtu = s_.mtu;
  if (s_.announce_dns) {
    ra.options.rdnss_lifetime = kDnsLifetimeS;
    ra.options.rdnss = dns;
  }
  if (s_.announce_dns && !s_.domain.empty()) {
    ra.options.dnssl_lifetime = kDnsLifetimeS;
    ra.options.dnssl = search;
  }
  send_ndp(dst_mac, link_local_, dst, ra);  // RAs come from the link-local address (RFC 4861 4.2)
  counters_.ndp_ra_sent++;
}

void NdpServer::send_ndp(const MacAddr& dst_mac, const Ipv6Addr& src, const Ipv6Addr& dst, const NdpRepr& r) {
  const std::size_t len = r.emit(out_.payload(), src, dst);
  if (len == 0) return;
  out_.send(dst_mac, src, dst, IpProtocol::Icmpv6, kNdpHopLimit, len);
}

nlohmann::json NdpServer::status() const {
  return {{"prefix", s_.prefix.to_string() + "/" + std::to_string(s_.prefix_len)},
          {"gateway", s_.gateway.to_string()},
          {"dns", s_.dns.to_string()},
          {"link_local", link_local_.to_string()},
          {"ra_managed", s_.managed},
          {"ra_other", s_.other}};
}

}  // namespace vnet::nat
