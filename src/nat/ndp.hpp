// IPv6 Neighbor Discovery for a NAT network (RFC 4861), the IPv6 side of
// what ARP and DHCP's router option do for IPv4.
//
// The gateway is a router on the network's /64: it answers neighbour
// solicitations for its gateway and DNS addresses and for its link-local
// address (fe80:: with the modified EUI-64 of its MAC), answers router
// solicitations with a router advertisement and sends one to all nodes
// periodically (RFC 4861 6.2.4: three at 16 s after start, then every
// 200-600 s). The RA carries the prefix (on-link and autonomous, so guests
// configure addresses by SLAAC), the MTU, the DNS address as RDNSS and the
// network's domain as DNSSL (RFC 8106), and the M/O flags that tell guests
// whether to ask DHCPv6 (nat/dhcp6) for addresses (M) or only for other
// configuration (O).
//
// Guests become neighbours through nat/neigh with the rules of IPv4: an NS
// or NA may claim only the sender's own, free addresses, with a link-layer
// option naming the frame's source MAC; anything else is dropped and
// counted. Messages without hop limit 255 (forwarded by a router, so not
// from the link) or failing RFC 4861's validity checks are dropped
// (drop_ndp_invalid). Router advertisements and redirects from guests are
// counted and ignored: the gateway is the network's only router. The
// switch still floods a guest's multicast NDP to the other guests, as it
// floods ARP; vnet has no RA guard (see docs/nat.md).
//
// When the gateway has a packet for a guest address with no binding it
// calls solicit(): a multicast NS to the address's solicited-node group
// (at most kMaxSolicitsPerSecond), whose NA then binds the address.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/event_loop.hpp"
#include "fabric/port.hpp"
#include "nat/guest_io.hpp"
#include "wire/icmpv6.hpp"
#include "wire/ip_protocol.hpp"
#include "wire/ipaddr.hpp"
#include "wire/mac.hpp"

namespace vnet::nat {

class NeighTable;

// The IPv6 side of the network as NDP and DHCPv6 see it.
struct Ipv6Settings {
  wire::Ipv6Addr prefix;  // the network's prefix; SLAAC needs a /64
  std::uint8_t prefix_len = 64;
  wire::Ipv6Addr gateway;
  wire::Ipv6Addr dns;
  wire::MacAddr mac;  // the gateway's
  std::uint32_t mtu = 1500;
  std::string domain;  // DNSSL and DHCPv6 domain list; empty: none
  bool managed = false;  // RA M flag: addresses from DHCPv6 too
  bool other = true;     // RA O flag: DNS from DHCPv6 (information-request)
  // A network without NAT (internal, host-only) has no way out: its RAs say
  // "not a default router" (lifetime 0), and without a DNS forwarder
  // neither RAs nor DHCPv6 name a DNS server.
  bool router = true;
  bool announce_dns = true;
  bool advertise = true;  // false: no RAs at all (--ra off)
};

// Builds whole Ethernet + IPv6 frames for the gateway's own IPv6 control
// messages (NDP, DHCPv6) in one fixed buffer, and hands them to the switch.
class Ipv6ControlOut {
 public:
  using Sink = std::function<void(wire::Bytes frame)>;
  Ipv6ControlOut(const wire::MacAddr& mac, Sink sink);

  // Room for the upper-layer message, valid until the next send().
  wire::MutBytes payload();
  void send(const wire::MacAddr& dst_mac, const wire::Ipv6Addr& src, const wire::Ipv6Addr& dst,
            wire::IpProtocol proto, std::uint8_t hop_limit, std::size_t len);

 private:
  // NDP and DHCPv6 replies stay far below the IPv6 minimum MTU.
  static constexpr std::size_t kCapacity = 14 + 1280;
  wire::MacAddr mac_;
  Sink sink_;
  std::unique_ptr<std::uint8_t[]> frame_;
};

class NdpServer {
 public:
  static constexpr std::uint32_t kMaxSolicitsPerSecond = 64;
  static constexpr std::uint16_t kRouterLifetimeS = 1800;
  static constexpr std::uint32_t kPrefixValidS = 86400;
  static constexpr std::uint32_t kPrefixPreferredS = 14400;
  static constexpr std::uint32_t kDnsLifetimeS = 1800;

  NdpServer(EventLoop& loop, Ipv6ControlOut& out, NeighTable& neigh, NatCounters& counters, Ipv6Settings s);
  ~NdpServer();

  const Ipv6Settings& settings() const { return s_; }
  const wire::Ipv6Addr& link_local() const { return link_local_; }
  // The gateway's own addresses: gateway, DNS, link-local.
  bool is_own(const wire::Ipv6Addr& a) const;
  // Multicast groups the gateway listens to: all-nodes, all-routers and the
  // solicited-node groups of its addresses (plus DHCPv6's ff02::1:2).
  bool listens_to(const wire::MacAddr& dst) const;

  // An ICMPv6 message of an NDP type (133-137) from guest (port, src_mac);
  // icmp is the whole ICMPv6 message.
  void on_message(PortId port, const wire::MacAddr& src_mac, const wire::Ipv6Addr& src,
                  const wire::Ipv6Addr& dst, std::uint8_t hop_limit, wire::Bytes icmp);
  // Asks who holds a guest address the gateway has a packet for.
  void solicit(const wire::Ipv6Addr& target);
  // An unsolicited RA to all nodes (also what the periodic timer sends).
  void advertise();
  nlohmann::json status() const;

 private:
  void on_router_solicit(const wire::MacAddr& src_mac, const wire::Ipv6Addr& src, const wire::NdpMessage& m);
  void on_neighbor_solicit(PortId port, const wire::MacAddr& src_mac, const wire::Ipv6Addr& src,
                           const wire::Ipv6Addr& dst, const wire::NdpMessage& m);
  void on_neighbor_advert(PortId port, const wire::MacAddr& src_mac, const wire::Ipv6Addr& src,
                          const wire::Ipv6Addr& dst, const wire::NdpMessage& m);
  void send_router_advert(const wire::MacAddr& dst_mac, const wire::Ipv6Addr& dst);
  void send_ndp(const wire::MacAddr& dst_mac, const wire::Ipv6Addr& src, const wire::Ipv6Addr& dst,
                const wire::NdpRepr& r);
  void on_ra_timer();
  bool link_option_ok(const wire::NdpMessage& m, std::uint8_t type, const wire::MacAddr& src_mac);

  Ipv6ControlOut& out_;
  NeighTable& neigh_;
  NatCounters& counters_;
  Ipv6Settings s_;
  wire::Ipv6Addr link_local_;
  Timer ra_timer_;
  std::minstd_rand rng_;
  int initial_ras_left_ = 3;
  Nanos last_multicast_ra_ = 0;
  Nanos solicit_window_ = 0;
  std::uint32_t solicits_in_window_ = 0;
};

}  // namespace vnet::nat
