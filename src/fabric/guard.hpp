// Server guard: on a network whose router and DHCP servers vnet itself runs
// (the NAT gateway, or the servers of an internal or host-only network), a
// guest may not speak as one of them. The switch drops, from any other port,
// IPv6 router advertisements and redirects (RFC 6105's RA guard), DHCPv6
// server messages, and DHCPv4 server messages: the frames a rogue router or
// DHCP server would use to become the other guests' gateway.
#pragma once

#include "wire/bytes.hpp"
#include "wire/ethernet.hpp"

namespace vnet {

// True when the Ethernet payload `l3` of type `type` is a router or DHCP
// server message, or an IPv6 packet whose header chain cannot be followed
// to its upper-layer header within its first fragment, where such a message
// could hide (RFC 7112, RFC 7113). Anything else, including every non-IP
// frame, is false.
bool is_server_message(wire::EtherType type, wire::Bytes l3);

}  // namespace vnet
