#include "nat/fwd.hpp"

namespace vnet::nat {

using namespace vnet::wire;

namespace {

constexpr std::uint16_t kDnsPort = 53;
constexpr Ipv4Addr kHostLoopback{{127, 0, 0, 1}};

FwdDecision refuse(FwdRefusal why) { return {FwdKind::Refused, why, {}}; }

bool stream_or_datagram(IpProtocol proto) { return proto == IpProtocol::Udp || proto == IpProtocol::Tcp; }

// The IPv6 half of forward(): the same rules with the network's IPv6
// addresses; the gateway stands for the host's ::1.
FwdDecision forward6(const NatConfig& config, IpProtocol proto, const Ipv6Addr& dst, std::uint16_t dport) {
  if (!config.ipv6) return refuse(FwdRefusal::Restricted);
  if (dst == config.dns6) {
    if (!config.dns_forwarder) return refuse(FwdRefusal::Restricted);
    if (stream_or_datagram(proto) && dport == kDnsPort) return {FwdKind::DnsForwarder, FwdRefusal::None, dst};
    return refuse(FwdRefusal::Restricted);
  }
  if (config.restrict) return refuse(FwdRefusal::Restricted);
  if (dst == config.gateway6) {
    if (!stream_or_datagram(proto)) return refuse(FwdRefusal::Restricted);
    if (!config.host_loopback) return refuse(FwdRefusal::HostLoopback);
    return {FwdKind::HostLoopback, FwdRefusal::None, IpAddr(Ipv6Addr::loopback())};
  }
  if (config.net6.contains(dst) || !config.outside) return refuse(FwdRefusal::Restricted);
  return {FwdKind::Outside, FwdRefusal::None, IpAddr(dst)};
}

}  // namespace

bool is_martian(Ipv4Addr a) {
  const std::uint8_t first = a.octets[0];
  return first == 0 || first == 127 || a.is_link_local() || first >= 224;  // 224/4 and 240/4
}

bool is_martian(const Ipv6Addr& a) {
  // ::/96 holds ::, ::1 and the deprecated IPv4-compatible addresses; the
  // IPv4-mapped ::ffff:0:0/96 would reach IPv4 through an IPv6 socket.
  bool first_96_zero = true;
  for (std::size_t i = 0; i < 12; ++i) first_96_zero = first_96_zero && a.octets[i] == 0;
  return first_96_zero || a.is_link_local() || a.is_multicast() || a.is_v4_mapped();
}

bool is_martian(IpAddr a) { return a.is_v4() ? is_martian(a.v4()) : is_martian(a.v6()); }

FwdDecision forward(const NatConfig& config, IpProtocol proto, IpAddr dst, std::uint16_t dport) {
  if (is_martian(dst)) return refuse(FwdRefusal::Martian);
  if (!dst.is_v4()) return forward6(config, proto, dst.v6(), dport);
  const Ipv4Addr v4 = dst.v4();
  if (v4 == config.dns) {
    if (!config.dns_forwarder) return refuse(FwdRefusal::Restricted);
    if (stream_or_datagram(proto) && dport == kDnsPort) return {FwdKind::DnsForwarder, FwdRefusal::None, dst};
    return refuse(FwdRefusal::Restricted);
  }
  if (config.restrict) return refuse(FwdRefusal::Restricted);
  if (v4 == config.gateway) {
    // Only TCP and UDP reach the host (pings to the gateway are answered by it).
    if (!stream_or_datagram(proto)) return refuse(FwdRefusal::Restricted);
    if (!config.host_loopback) return refuse(FwdRefusal::HostLoopback);
    return {FwdKind::HostLoopback, FwdRefusal::None, IpAddr(kHostLoopback)};
  }
  if (config.net.contains(v4) || !config.outside) return refuse(FwdRefusal::Restricted);
  return {FwdKind::Outside, FwdRefusal::None, dst};
}

SockAddr host_target(const FwdDecision& d, std::uint16_t dport) {
  if (d.refused()) return SockAddr{};
  return SockAddr::from_ip(d.target, dport);
}

}  // namespace vnet::nat
