// Settings of a NAT network, with QEMU's user-mode defaults.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "wire/ipaddr.hpp"
#include "wire/mac.hpp"

namespace vnet::nat {

struct NatConfig {
  wire::Ipv4Cidr net{{{10, 0, 2, 0}}, 24};
  wire::Ipv4Addr gateway{{10, 0, 2, 2}};
  wire::Ipv4Addr dns{{10, 0, 2, 3}};
  wire::Ipv4Addr dhcp_start{{10, 0, 2, 15}};
  bool dhcp = true;
  // Static DHCP reservations: this MAC always gets this address.
  std::vector<std::pair<wire::MacAddr, wire::Ipv4Addr>> reservations;
  // Host resolvers as "ADDR" or "ADDR:PORT"; empty: follow /etc/resolv.conf.
  std::vector<std::string> dns_upstream;
  std::string resolv_conf = "/etc/resolv.conf";
  // IPv6, with QEMU's defaults: guests configure addresses in net6 (SLAAC
  // from the gateway's router advertisements, or DHCPv6); gateway6 is the
  // router and, like the IPv4 gateway, the host's ::1; dns6 the forwarder.
  bool ipv6 = true;
  wire::Ipv6Cidr net6{{{0xfe, 0xc0}}, 64};
  wire::Ipv6Addr gateway6{{0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}};
  wire::Ipv6Addr dns6{{0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3}};
  bool host_loopback = true;   // the gateway addresses reach the host's 127.0.0.1 and ::1
  bool restrict = false;       // guests reach only the network's own services and port forwards
  // Modes that keep guests in (hostonly, internal, DHCP on a switch): the
  // gateway serves DHCP but translates nothing to addresses beyond the host,
  // forwards no DNS, and (without host loopback) offers itself as no router.
  bool outside = true;         // other addresses are translated to host sockets
  bool dns_forwarder = true;   // the DNS address forwards to the host's resolvers
  bool offer_router = true;    // DHCP names the gateway as router (and the DNS address as DNS)
  // The router DHCP names when it is not the gateway itself (kernel-nat: the
  // host bridge's address).
  std::optional<wire::Ipv4Addr> router;
  std::string tftp_dir;        // empty: no TFTP
  std::string bootfile;
  std::string domain;
  std::uint32_t mtu = 1500;
  Nanos lease_time = 86400 * kSeconds;
  // Limits against a hostile guest.
  std::uint32_t max_flows_per_guest = 4096;
  std::uint32_t max_flows = 16384;
  // TCP connects in progress (a black hole holds one for 20 s): per guest,
  // so one guest cannot use up the network's.
  std::uint32_t max_pending_connects = 1024;
  std::uint32_t max_pending_connects_per_guest = 64;
  // Host send buffers of TCP flows, in the kernel's accounting (SO_SNDBUF as
  // read back): a budget per network, shared fairly; a flow holds at most
  // tcp_sndbuf_max (the window that makes high-RTT uploads fast) and never
  // less than tcp_sndbuf_min.
  std::uint32_t tcp_sndbuf_budget = 32u << 20;
  std::uint32_t tcp_sndbuf_max = 8u << 20;
  std::uint32_t tcp_sndbuf_min = 512u << 10;
  std::uint32_t max_leases = 1024;
  // Leases one port may hold at once (a guest cycling random chaddrs cannot
  // drain the pool; a bridge port with several VMs may need more).
  std::uint32_t max_leases_per_port = 4;
  // Guest address bindings (see nat/neigh.hpp) in the whole network.
  std::uint32_t max_neighbours = 4096;
  // DHCPv6 server (nat/dhcp6); router advertisements then set the O flag,
  // and with dhcp6_managed the M flag too (--dhcp6 on|off|managed).
  bool dhcp6 = true;
  // Router advertisements (unsolicited, and answers to solicitations);
  // off: guests configure IPv6 themselves (--ra on|off).
  bool ra = true;
  bool dhcp6_managed = false;
};

}  // namespace vnet::nat
