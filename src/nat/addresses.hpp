// How host-side addresses look from inside a NAT network.
#pragma once

#include "core/sockaddr.hpp"
#include "wire/ipaddr.hpp"

namespace vnet::nat {

// The address a host client appears as to the guest: its own IPv4 address,
// or the gateway for loopback, unspecified and IPv6 clients (the guest
// could not reach those), as QEMU's 10.0.2.2 stands for the host.
wire::IpAddr guest_visible_address(const SockAddr& client, const wire::IpAddr& gateway);

}  // namespace vnet::nat
