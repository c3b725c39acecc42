// IP protocol numbers (IANA), shared by the IPv4 protocol field and the IPv6
// next-header field.
#pragma once

#include <cstdint>

namespace vnet::wire {

// Unknown values remain representable; compare against the named ones.
enum class IpProtocol : std::uint8_t {
  HopByHop = 0,
  Icmp = 1,
  Tcp = 6,
  Udp = 17,
  Ipv6Route = 43,
  Ipv6Frag = 44,
  Icmpv6 = 58,
  Ipv6NoNxt = 59,
  Ipv6Opts = 60,
};

}  // namespace vnet::wire
