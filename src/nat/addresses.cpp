#include "nat/addresses.hpp"

namespace vnet::nat {

wire::IpAddr guest_visible_address(const SockAddr& client, const wire::IpAddr& gateway) {
  const std::optional<wire::IpAddr> a = client.ip();
  // IPv4 guests only for now: a native IPv6 client has no IPv4 face.
  if (!a || !a->is_v4()) return gateway;
  const wire::Ipv4Addr v4 = a->v4();
  return v4.is_loopback() || v4.is_unspecified() ? gateway : *a;
}

}  // namespace vnet::nat
