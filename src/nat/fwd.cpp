#include "nat/fwd.hpp"

namespace vnet::nat {

using namespace vnet::wire;

namespace {

constexpr std::uint16_t kDnsPort = 53;
constexpr Ipv4Addr kHostLoopback{{127, 0, 0, 1}};

FwdDecision refuse(FwdRefusal why) { return {FwdKind::Refused, why, {}}; }

}  // namespace

bool is_martian(Ipv4Addr a) {
  const std::uint8_t first = a.octets[0];
  return first == 0 || first == 127 || a.is_link_local() || first >= 224;  // 224/4 and 240/4
}

bool is_martian(const Ipv6Addr& a) {
  const bool v4_mapped = a.is_v4_mapped();
  return a.is_unspecified() || a.is_loopback() || a.is_link_local() || a.is_multicast() || v4_mapped;
}

bool is_martian(IpAddr a) { return a.is_v4() ? is_martian(a.v4()) : is_martian(a.v6()); }

FwdDecision forward(const NatConfig& config, IpProtocol proto, IpAddr dst, std::uint16_t dport) {
  if (is_martian(dst)) return refuse(FwdRefusal::Martian);
  if (!dst.is_v4()) return refuse(FwdRefusal::Restricted);  // no IPv6 outside yet
  const Ipv4Addr v4 = dst.v4();
  const bool stream_or_datagram = proto == IpProtocol::Udp || proto == IpProtocol::Tcp;
  if (v4 == config.dns) {
    if (stream_or_datagram && dport == kDnsPort) return {FwdKind::DnsForwarder, FwdRefusal::None, dst};
    return refuse(FwdRefusal::Restricted);
  }
  if (config.restrict) return refuse(FwdRefusal::Restricted);
  if (v4 == config.gateway) {
    // Only TCP and UDP reach the host (pings to the gateway are answered by it).
    if (!stream_or_datagram) return refuse(FwdRefusal::Restricted);
    if (!config.host_loopback) return refuse(FwdRefusal::HostLoopback);
    return {FwdKind::HostLoopback, FwdRefusal::None, IpAddr(kHostLoopback)};
  }
  if (config.net.contains(v4)) return refuse(FwdRefusal::Restricted);
  return {FwdKind::Outside, FwdRefusal::None, dst};
}

SockAddr host_target(const FwdDecision& d, std::uint16_t dport) {
  if (d.refused() || !d.target.is_v4()) return SockAddr{};
  return SockAddr::from_ipv4(d.target.v4(), dport);
}

}  // namespace vnet::nat
