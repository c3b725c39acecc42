// The NAT's forwarding policy: where a guest's packet to an address may go.
//
// Theory of operation: every translator (TCP, UDP, ICMP) asks forward() once
// per new flow, after the gateway has looked for an existing flow (so the
// replies of port-forwarded connections pass whatever the policy says about
// their address). The answer is one of:
//   HostLoopback  the gateway address stands for the host's own loopback
//                 (QEMU's 10.0.2.2 for 127.0.0.1, fec0::2 for ::1): only
//                 that one address per family, and only while
//                 --host-loopback is on and --restrict off;
//   DnsForwarder  the network's DNS address, port 53 (UDP and TCP);
//   Outside       any other routable address, translated to a host socket
//                 to that same address (never under --restrict);
//   Refused       with the reason, each its own counter:
//     Martian       destinations no guest may reach through the NAT, whatever
//                   the settings: 0/8 (0.0.0.0 means "this host" to a
//                   socket), 127/8 (host loopback by another name), 169.254/16,
//                   224/4 (multicast) and 240/4 (reserved, broadcast); for
//                   IPv6 ::/96 (::, ::1, IPv4-compatible), fe80::/10,
//                   ff00::/8 and v4-mapped ::ffff:0:0/96;
//     HostLoopback  the gateway address with --host-loopback off;
//     Restricted    --restrict on, the DNS address on other ports, and other
//                   addresses of the network itself (guests talk to each
//                   other over the switch, not through the NAT), and any
//                   IPv6 address with --ipv6 off.
// The network's own services (DHCP, DNS, TFTP, pings to the gateway) are
// answered by the gateway before this policy is asked.
#pragma once

#include <cstdint>

#include "core/sockaddr.hpp"
#include "nat/config.hpp"
#include "wire/ip_protocol.hpp"
#include "wire/ipaddr.hpp"

namespace vnet::nat {

enum class FwdKind { HostLoopback, DnsForwarder, Outside, Refused };
enum class FwdRefusal { None, Martian, HostLoopback, Restricted };

struct FwdDecision {
  FwdKind kind = FwdKind::Refused;
  FwdRefusal refusal = FwdRefusal::None;
  // Where the host socket goes (HostLoopback and Outside); the DNS
  // forwarder picks its own upstream.
  wire::IpAddr target;

  bool refused() const { return kind == FwdKind::Refused; }
};

// Never translated, whatever the settings (see the list above).
bool is_martian(wire::Ipv4Addr a);
bool is_martian(const wire::Ipv6Addr& a);
bool is_martian(wire::IpAddr a);

// The one policy: what a guest's packet of protocol proto to dst:dport
// reaches (dport is ignored for ICMP).
FwdDecision forward(const NatConfig& config, wire::IpProtocol proto, wire::IpAddr dst, std::uint16_t dport);

// The host socket address for an HostLoopback or Outside decision.
SockAddr host_target(const FwdDecision& d, std::uint16_t dport);

}  // namespace vnet::nat
