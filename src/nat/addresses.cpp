#include "nat/addresses.hpp"

namespace vnet::nat {

wire::IpAddr guest_visible_address(const SockAddr& client, const wire::IpAddr& guest, const NatConfig& config) {
  const std::optional<wire::IpAddr> a = client.ip();  // an IPv4-mapped client is IPv4 here
  if (guest.is_v4()) {
    if (!a || !a->is_v4() || a->v4().is_loopback() || a->v4().is_unspecified()) return config.gateway;
    return *a;
  }
  if (!a || a->is_v4() || a->v6().is_loopback() || a->v6().is_unspecified() || a->v6().is_link_local())
    return config.gateway6;
  return *a;
}

}  // namespace vnet::nat
