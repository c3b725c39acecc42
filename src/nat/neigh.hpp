// Guest identity of a NAT network: which guest holds which address.
//
// Theory of operation: a guest is a MAC learned on a port (the port is what
// the switch says the frame came in on, so a guest cannot claim to be on
// another port). An address is bound to a guest when DHCP leases it to that
// guest (on_lease), or when a statically configured guest first uses a free
// address of the network as its source (check_source). From then on, a
// frame (IPv4 or ARP) whose source address is bound to another guest is
// refused (drop_spoofed) and never changes the binding; nor does a source
// outside the network, or one of the network's own addresses. A binding
// moves only on a new lease, or once its holder has been silent for the
// aging time (the network's MAC aging, 300 s by default), so a guest that
// rebooted with a static address gets it back after a while, and one that
// renews its lease gets it back at once.
//
// The same MAC seen on a second port (a cloned VM, or a guest forging
// another's MAC) is counted (neigh_mac_conflict) and logged at most once
// per interval; its frames are treated like any other guest's, so it takes
// nothing the first holder still uses.
//
// Bounds (a guest forging random sources must not grow memory): at most
// kMaxStaticPerGuest addresses claimed by use per guest, kMaxPerPort
// bindings per port (leases included) and NatConfig::max_neighbours in all;
// entries silent past the aging time are swept. A claim over a limit is
// refused (drop_neigh_limit). status() lists at most kStatusLimit entries.
//
// IPv6 (NatConfig::ipv6): guests hold link-local addresses (fe80::/64) and
// addresses in the network's prefix (net6), learned from their packets and from
// Neighbor Discovery (nat/ndp) under the same rules, so an address bound to
// one guest cannot be taken over by an NA or NS from another port either.
// SLAAC guests use several addresses at once (link-local, stable, temporary
// privacy ones), so IPv6 claims by use have their own per-guest limit,
// kMaxStaticV6PerGuest.
#pragma once

#include <cstdint>
#include <unordered_map>

#include <nlohmann/json_fwd.hpp>

#include "core/clock.hpp"
#include "fabric/port.hpp"
#include "nat/config.hpp"
#include "nat/guest_io.hpp"
#include "wire/ipaddr.hpp"
#include "wire/mac.hpp"

namespace vnet::nat {

class NeighTable {
 public:
  static constexpr std::uint32_t kMaxStaticPerGuest = 4;
  static constexpr std::uint32_t kMaxStaticV6PerGuest = 8;
  static constexpr std::uint32_t kMaxPerPort = 16;
  static constexpr std::size_t kStatusLimit = 256;

  enum class Verdict { Ok, Spoofed, OverLimit };

  NeighTable(const NatConfig& config, NatCounters& counters, Nanos aging);

  // The gateway's link-local address, which no guest may hold.
  void set_gateway_link_local(const wire::Ipv6Addr& a);

  // A frame from guest (port, mac) uses src as its source address: binds a
  // free address, refreshes the guest's own, refuses anyone else's.
  Verdict check_source(PortId port, const wire::MacAddr& mac, wire::IpAddr src, Nanos now);
  // DHCP leased addr to (port, mac): the binding moves to it.
  void on_lease(PortId port, const wire::MacAddr& mac, wire::IpAddr addr, Nanos now);
  // DHCP saw addr released by (port, mac): forget the binding if it is theirs.
  void on_release(PortId port, const wire::MacAddr& mac, wire::IpAddr addr);
  // True when addr is held by a guest other than (port, mac) that is still
  // active (DHCP avoids offering it).
  bool held_by_other(wire::IpAddr addr, PortId port, const wire::MacAddr& mac, Nanos now) const;

  const wire::MacAddr* mac_of(wire::IpAddr addr) const;
  PortId port_of(wire::IpAddr addr) const;
  // Drops entries silent past the aging time.
  void expire(Nanos now);
  std::size_t size() const { return by_addr_.size(); }
  Nanos aging() const { return aging_; }
  nlohmann::json status() const;

 private:
  struct Binding {
    PortId port = 0;
    wire::MacAddr mac;
    Nanos last_seen = 0;
    bool leased = false;  // bound by DHCP, not by use
  };
  struct GuestKey {
    PortId port;
    wire::MacAddr mac;
    bool v6 = false;  // claims by use are counted per family
    friend bool operator==(const GuestKey&, const GuestKey&) = default;
  };
  struct GuestKeyHash {
    std::size_t operator()(const GuestKey& k) const noexcept {
      return std::hash<wire::MacAddr>{}(k.mac) ^ (std::size_t{k.port} * 0x9E3779B97F4A7C15ull) ^ k.v6;
    }
  };

  bool in_network(wire::IpAddr a) const;
  bool in_network_v6(const wire::Ipv6Addr& a) const;
  bool stale(const Binding& b, Nanos now) const { return now - b.last_seen >= aging_; }
  void unbind(std::unordered_map<wire::IpAddr, Binding>::iterator it);
  void bind(PortId port, const wire::MacAddr& mac, wire::IpAddr addr, Nanos now, bool leased);
  void note_conflict(PortId port, const wire::MacAddr& mac, const Binding& holder, Nanos now);

  const NatConfig& config_;
  NatCounters& counters_;
  Nanos aging_;
  wire::Ipv6Addr gateway_link_local_;
  std::unordered_map<wire::IpAddr, Binding> by_addr_;
  std::unordered_map<GuestKey, std::uint32_t, GuestKeyHash> static_claims_;
  std::unordered_map<PortId, std::uint32_t> per_port_;
  Nanos last_conflict_log_ = -60 * kSeconds;
  Nanos last_spoof_log_ = -60 * kSeconds;
};

}  // namespace vnet::nat
