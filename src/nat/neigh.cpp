#include "nat/neigh.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/log.hpp"

namespace vnet::nat {

using namespace vnet::wire;

namespace {

constexpr Nanos kLogInterval = 60 * kSeconds;

}  // namespace

NeighTable::NeighTable(const NatConfig& config, NatCounters& counters, Nanos aging)
    : config_(config), counters_(counters), aging_(aging) {}

void NeighTable::set_gateway_link_local(const Ipv6Addr& a) { gateway_link_local_ = a; }

// An IPv6 address a guest may hold: one of the network's prefix (NatConfig
// net6) or a unicast link-local one, never the gateway's (gateway6, dns6,
// its link-local) nor a subnet-router anycast address (interface id 0,
// RFC 4291 2.6.1).
bool NeighTable::in_network_v6(const Ipv6Addr& a) const {
  if (!config_.ipv6 || a.is_multicast() || a.is_unspecified()) return false;
  if (std::all_of(a.octets.begin() + 8, a.octets.end(), [](auto o) { return o == 0; })) return false;
  const bool link_local = a.octets[0] == 0xfe && a.octets[1] == 0x80 &&
                          std::all_of(a.octets.begin() + 2, a.octets.begin() + 8, [](auto o) { return o == 0; });
  if (link_local) return a != gateway_link_local_;
  return config_.net6.contains(a) && a != config_.net6.network() && a != config_.gateway6 && a != config_.dns6;
}

// An address a guest may hold: inside the network and none of its own
// (network, broadcast, gateway, DNS).
bool NeighTable::in_network(IpAddr a) const {
  if (a.is_v6()) return in_network_v6(a.v6());
  const Ipv4Addr v4 = a.v4();
  return config_.net.contains(v4) && v4 != config_.net.network() && v4 != config_.net.broadcast() &&
         v4 != config_.gateway && v4 != config_.dns;
}

NeighTable::Verdict NeighTable::check_source(PortId port, const MacAddr& mac, IpAddr src, Nanos now) {
  if (!in_network(src)) {
    counters_.drop_spoofed++;
    return Verdict::Spoofed;
  }
  if (auto it = by_addr_.find(src); it != by_addr_.end()) {
    Binding& b = it->second;
    if (b.port == port && b.mac == mac) {
      b.last_seen = now;
      return Verdict::Ok;
    }
    if (!stale(b, now)) {
      if (b.mac == mac) note_conflict(port, mac, b, now);
      counters_.drop_spoofed++;
      if (now - last_spoof_log_ >= kLogInterval) {
        last_spoof_log_ = now;
        log::warn("nat {}: {} on port {} used {}, which belongs to {} on port {}; dropped (more are only counted)",
                  config_.net.to_string(), mac.to_string(), port, src.to_string(), b.mac.to_string(), b.port);
      }
      return Verdict::Spoofed;
    }
    unbind(it);  // its holder has been silent past the aging time: the address is free
  }
  const bool v6 = !src.is_v4();
  auto claims = static_claims_.find(GuestKey{port, mac, v6});
  auto on_port = per_port_.find(port);
  const std::uint32_t max_static = v6 ? kMaxStaticV6PerGuest : kMaxStaticPerGuest;
  if ((claims != static_claims_.end() && claims->second >= max_static) ||
      (on_port != per_port_.end() && on_port->second >= kMaxPerPort) || by_addr_.size() >= config_.max_neighbours) {
    counters_.drop_neigh_limit++;
    return Verdict::OverLimit;
  }
  bind(port, mac, src, now, false);
  return Verdict::Ok;
}

void NeighTable::on_lease(PortId port, const MacAddr& mac, IpAddr addr, Nanos now) {
  if (!in_network(addr)) return;
  if (auto it = by_addr_.find(addr); it != by_addr_.end()) {
    Binding& b = it->second;
    if (b.port == port && b.mac == mac && b.leased) {
      b.last_seen = now;
      return;
    }
    unbind(it);  // a lease wins over a claim by use, and over another guest's older lease
  }
  // Leases are bounded by DHCP's own limits (max_leases, max_leases_per_port),
  // so they are never refused here.
  bind(port, mac, addr, now, true);
}

void NeighTable::on_release(PortId port, const MacAddr& mac, IpAddr addr) {
  auto it = by_addr_.find(addr);
  if (it != by_addr_.end() && it->second.port == port && it->second.mac == mac) unbind(it);
}

bool NeighTable::held_by_other(IpAddr addr, PortId port, const MacAddr& mac, Nanos now) const {
  auto it = by_addr_.find(addr);
  if (it == by_addr_.end()) return false;
  const Binding& b = it->second;
  return !(b.port == port && b.mac == mac) && !stale(b, now);
}

const MacAddr* NeighTable::mac_of(IpAddr addr) const {
  auto it = by_addr_.find(addr);
  return it == by_addr_.end() ? nullptr : &it->second.mac;
}

PortId NeighTable::port_of(IpAddr addr) const {
  auto it = by_addr_.find(addr);
  return it == by_addr_.end() ? 0 : it->second.port;
}

void NeighTable::bind(PortId port, const MacAddr& mac, IpAddr addr, Nanos now, bool leased) {
  by_addr_[addr] = Binding{port, mac, now, leased};
  if (!leased) static_claims_[GuestKey{port, mac, !addr.is_v4()}]++;
  per_port_[port]++;
}

void NeighTable::unbind(std::unordered_map<IpAddr, Binding>::iterator it) {
  const Binding& b = it->second;
  if (!b.leased) {
    auto c = static_claims_.find(GuestKey{b.port, b.mac, !it->first.is_v4()});
    if (c != static_claims_.end() && --c->second == 0) static_claims_.erase(c);
  }
  auto p = per_port_.find(b.port);
  if (p != per_port_.end() && --p->second == 0) per_port_.erase(p);
  by_addr_.erase(it);
}

void NeighTable::note_conflict(PortId port, const MacAddr& mac, const Binding& holder, Nanos now) {
  counters_.neigh_mac_conflict++;
  if (now - last_conflict_log_ < kLogInterval) return;
  last_conflict_log_ = now;
  log::warn("nat {}: MAC {} seen on port {} while it holds an address on port {} (cloned or forged MAC?)",
            config_.net.to_string(), mac.to_string(), port, holder.port);
}

void NeighTable::expire(Nanos now) {
  for (auto it = by_addr_.begin(); it != by_addr_.end();) {
    auto next = std::next(it);
    if (stale(it->second, now)) unbind(it);
    it = next;
  }
}

nlohmann::json NeighTable::status() const {
  const Nanos now = monotonic_now();
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [addr, b] : by_addr_) {
    if (out.size() >= kStatusLimit) break;
    out.push_back({{"ip", addr.to_string()},
                   {"mac", b.mac.to_string()},
                   {"port", b.port},
                   {"leased", b.leased},
                   {"idle_s", (now - b.last_seen) / kSeconds}});
  }
  return out;
}

}  // namespace vnet::nat
