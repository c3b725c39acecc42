// How host-side addresses look from inside a NAT network.
#pragma once

#include "core/sockaddr.hpp"
#include "nat/config.hpp"
#include "wire/ipaddr.hpp"

namespace vnet::nat {

// The address a host client (of a port forward) appears as to the guest,
// in the guest address's family: the client's own address when the guest
// could reach it, else the gateway of that family (for loopback,
// unspecified or link-local clients, and a client of the other family), as
// QEMU's 10.0.2.2 stands for the host.
wire::IpAddr guest_visible_address(const SockAddr& client, const wire::IpAddr& guest, const NatConfig& config);

}  // namespace vnet::nat
