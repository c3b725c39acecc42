// DHCPv6 server for a NAT network (RFC 8415), next to SLAAC (nat/ndp).
//
// Stateless: an Information-Request gets the DNS server (the network's DNS
// address) and the search list (the network's domain). Stateful: Solicit →
// Advertise, Request → Reply, Renew/Rebind extend, Release/Decline end a
// binding, Confirm checks the addresses are on-link; a Solicit with Rapid
// Commit gets the Reply at once. Each IA_NA of a client (its DUID and the
// IA's IAID) gets one address of the network's /64, from prefix::1000 up,
// so DHCPv6 addresses never collide with SLAAC ones (those carry ff:fe in
// the middle of the interface id).
//
// A client is the guest the frame came from (port and source MAC, as for
// DHCPv4): a lease is bound to that guest in nat/neigh, an address another
// guest holds is never handed out, and a port holds at most
// NatConfig::max_leases_per_port DHCPv6 addresses (the rest of its IAs get
// NoAddrsAvail, counted in dhcp6_port_limit), the network at most
// max_leases. Advertised but never requested addresses are freed after a
// minute. The server always answers stateful requests; the RA's M flag
// (--ra-managed) only tells guests that they should ask.
#pragma once

#include <memory>

#include <nlohmann/json_fwd.hpp>

#include "fabric/port.hpp"
#include "nat/guest_io.hpp"
#include "nat/ndp.hpp"

namespace vnet::nat {

class NeighTable;

class Dhcp6Server {
 public:
  // neigh (may be null in tests) learns every address bound or released.
  Dhcp6Server(Ipv6ControlOut& out, NeighTable* neigh, NatCounters& counters, const NatConfig& config,
              Ipv6Settings s);
  ~Dhcp6Server();
  Dhcp6Server(const Dhcp6Server&) = delete;
  Dhcp6Server& operator=(const Dhcp6Server&) = delete;

  // A UDP datagram (header included) a guest sent to port 547, in a frame
  // from src_mac that entered the network on `port`.
  void on_message(PortId port, const wire::MacAddr& src_mac, const wire::Ipv6Addr& src, const wire::Ipv6Addr& dst,
                  wire::Bytes udp);
  nlohmann::json status() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vnet::nat
