#include "fabric/guard.hpp"

#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"
#include "wire/ipv6.hpp"

namespace vnet {

using namespace vnet::wire;

namespace {

constexpr std::uint16_t kDhcpServerPort = 67;
constexpr std::uint16_t kDhcp6ServerPort = 547;
constexpr std::uint8_t kRouterAdvert = 134, kRedirect = 137;

// A UDP header's source port, if `l4` holds one.
bool udp_from_port(Bytes l4, std::uint16_t port) { return l4.size() >= 2 && load_be16(l4, 0) == port; }

bool ipv4_server_message(Bytes l3) {
  auto ip = Ipv4Packet::parse(l3);
  // Malformed IPv4 cannot reach a guest's DHCP client; later fragments
  // carry no UDP header.
  if (!ip || ip->protocol() != IpProtocol::Udp || ip->frag_offset() != 0) return false;
  return udp_from_port(ip->payload(), kDhcpServerPort);
}

bool ipv6_server_message(Bytes l3) {
  auto ip = Ipv6Packet::parse(l3);
  if (!ip) return false;
  auto walked = walk_extension_headers(*ip);
  if (!walked) return true;  // a chain we cannot follow may end in an RA
  if (walked->fragment_offset != 0) return false;  // no upper-layer header here
  const Bytes l4 = walked->l4;
  switch (walked->protocol) {
    case IpProtocol::Icmpv6:
      if (l4.empty()) return walked->has_fragment_header;  // the chain ends in a later fragment
      return l4[0] == kRouterAdvert || l4[0] == kRedirect;
    case IpProtocol::Udp:
      if (l4.size() < 2) return walked->has_fragment_header;
      return udp_from_port(l4, kDhcp6ServerPort);
    default:
      return false;
  }
}

}  // namespace

bool is_server_message(EtherType type, Bytes l3) {
  if (type == EtherType::Ipv4) return ipv4_server_message(l3);
  if (type == EtherType::Ipv6) return ipv6_server_message(l3);
  return false;
}

}  // namespace vnet
