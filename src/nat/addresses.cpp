#include "nat/addresses.hpp"

#include <netinet/in.h>

#include <cstring>

namespace vnet::nat {

wire::Ipv4Addr guest_visible_address(const SockAddr& client, wire::Ipv4Addr gateway) {
  wire::Ipv4Addr a = gateway;
  if (client.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&client.storage);
    std::memcpy(a.octets.data(), &in->sin_addr, 4);
  } else if (client.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&client.storage);
    if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return gateway;
    std::memcpy(a.octets.data(), in6->sin6_addr.s6_addr + 12, 4);
  }
  return a.is_loopback() || a.is_unspecified() ? gateway : a;
}

}  // namespace vnet::nat
