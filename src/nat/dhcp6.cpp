#include "nat/dhcp6.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "nat/neigh.hpp"
#include "wire/dhcpv6.hpp"
#include "wire/udp.hpp"

namespace vnet::nat {

using namespace vnet::wire;

namespace {

// Host part of the first pool address, and how long an advertised address
// waits for its Request.
constexpr std::uint64_t kPoolStart = 0x1000;
constexpr Nanos kAdvertiseHold = 60 * kSeconds;
constexpr std::size_t kUdpHeader = UdpPacket::kHeaderLen;

std::uint64_t host_part(const Ipv6Addr& a) {
  std::uint64_t v = 0;
  for (std::size_t i = 8; i < 16; ++i) v = (v << 8) | a.octets[i];
  return v;
}

Ipv6Addr with_host(const Ipv6Addr& prefix, std::uint64_t host) {
  Ipv6Addr a = prefix;
  for (std::size_t i = 15; i >= 8; --i) {
    a.octets[i] = static_cast<std::uint8_t>(host);
    host >>= 8;
  }
  return a;
}

std::string hex(Bytes b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i) s += ':';
    s += kDigits[b[i] >> 4];
    s += kDigits[b[i] & 15];
  }
  return s;
}

std::uint32_t seconds(Nanos n) { return static_cast<std::uint32_t>(std::min<Nanos>(n / kSeconds, 0xffffffffLL)); }

}  // namespace

struct Dhcp6Server::State {
  struct Lease {
    std::string duid;
    std::uint32_t iaid = 0;
    Ipv6Addr addr;
    PortId port = 0;
    MacAddr mac;
    Nanos expires = 0;
    bool bound = false;  // requested (or rapid commit), not only advertised
  };
  struct Declined {
    Ipv6Addr addr;
    Nanos until = 0;
  };

  State(Ipv6ControlOut& o, NeighTable* n, NatCounters& c, const NatConfig& cfg, Ipv6Settings st)
      : out(o), neigh(n), ctr(c), config(cfg), s(std::move(st)), link_local(link_local_from_mac(s.mac)) {
    // DUID-LL (RFC 8415 11.4): type 3, hardware type 1 (Ethernet), the MAC.
    server_duid = {0, 3, 0, 1};
    server_duid.insert(server_duid.end(), s.mac.octets.begin(), s.mac.octets.end());
  }

  Ipv6ControlOut& out;
  NeighTable* neigh;
  NatCounters& ctr;
  const NatConfig& config;
  Ipv6Settings s;
  Ipv6Addr link_local;
  std::vector<std::uint8_t> server_duid;
  std::vector<Lease> leases;  // at most config.max_leases
  std::vector<Declined> declined;
  std::uint64_t next_host = kPoolStart;

  Lease* find(std::string_view duid, std::uint32_t iaid) {
    for (auto& l : leases)
      if (l.iaid == iaid && l.duid == duid) return &l;
    return nullptr;
  }

  bool in_use(const Ipv6Addr& a, PortId port, const MacAddr& mac, Nanos now) const {
    for (const auto& l : leases)
      if (l.addr == a) return true;
    for (const auto& d : declined)
      if (d.addr == a) return true;
    return neigh && neigh->held_by_other(IpAddr(a), port, mac, now);
  }

  // An address the client asks for (its old one, after a restart of vnet)
  // is granted when it is a free pool address of this network.
  bool hint_ok(const Ipv6Addr& a, PortId port, const MacAddr& mac, Nanos now) const {
    const std::uint64_t h = host_part(a);
    return config.net6.contains(a) && h >= kPoolStart && h < (std::uint64_t{1} << 32) &&
           !in_use(a, port, mac, now);
  }

  std::optional<Ipv6Addr> allocate(PortId port, const MacAddr& mac, Nanos now) {
    // The pool is 2^32 addresses wide; a few tries past the in-use ones
    // always find one.
    for (std::size_t tries = 0; tries < leases.size() + declined.size() + 64; ++tries) {
      const Ipv6Addr a = with_host(s.prefix, next_host);
      next_host = next_host + 1 >= (std::uint64_t{1} << 32) ? kPoolStart : next_host + 1;
      if (config.net6.contains(a) && !in_use(a, port, mac, now)) return a;
    }
    return std::nullopt;
  }

  std::size_t leases_on_port(PortId port) const {
    return static_cast<std::size_t>(std::count_if(leases.begin(), leases.end(), [port](const Lease& l) { return l.port == port; }));
  }

  void expire(Nanos now) {
    std::erase_if(leases, [&](const Lease& l) {
      if (l.expires > now) return false;
      if (neigh && l.bound) neigh->on_release(l.port, l.mac, IpAddr(l.addr));
      return true;
    });
    std::erase_if(declined, [now](const Declined& d) { return d.until <= now; });
  }
};

Dhcp6Server::Dhcp6Server(Ipv6ControlOut& out, NeighTable* neigh, NatCounters& counters, const NatConfig& config,
                         Ipv6Settings s)
    : state_(std::make_unique<State>(out, neigh, counters, config, std::move(s))) {}

Dhcp6Server::~Dhcp6Server() = default;

namespace {

enum class IaAction { Advertise, Commit, Release, Decline, Confirm };

}  // namespace

void Dhcp6Server::on_message(PortId port, const MacAddr& src_mac, const Ipv6Addr& src, const Ipv6Addr& dst,
                             Bytes udp_bytes) {
  State& st = *state_;
  auto udp = UdpPacket::parse(udp_bytes);
  if (!udp) {
    st.ctr.drop_malformed++;
    return;
  }
  if (!udp->verify_checksum(IpAddr(src), IpAddr(dst))) {
    st.ctr.drop_bad_checksum++;
    return;
  }
  auto m = Dhcp6Message::parse(udp->payload());
  if (!m) {
    st.ctr.drop_malformed++;
    return;
  }
  // Clients speak from a link-local (or, renewing, a global) address of
  // their own: that is where the reply goes.
  if (src.is_unspecified() || src.is_multicast()) {
    st.ctr.drop_spoofed++;
    return;
  }
  const Nanos now = monotonic_now();
  if (st.neigh && st.neigh->check_source(port, src_mac, IpAddr(src), now) != NeighTable::Verdict::Ok) return;
  st.expire(now);

  const Bytes client_id = m->client_id();
  const Bytes server_id = m->server_id();
  const bool ours = server_id.size() == st.server_duid.size() &&
                    std::equal(server_id.begin(), server_id.end(), st.server_duid.begin());
  const bool has_ia = m->find(dhcp6_opt::kIaNa).has_value();

  // RFC 8415 16: which identifiers each message must (not) carry.
  Dhcp6MessageType reply_type = Dhcp6MessageType::Reply;
  IaAction action;
  switch (m->type()) {
    case Dhcp6MessageType::Solicit:
      if (client_id.empty() || !server_id.empty()) return;
      action = m->rapid_commit() ? IaAction::Commit : IaAction::Advertise;
      if (!m->rapid_commit()) reply_type = Dhcp6MessageType::Advertise;
      break;
    case Dhcp6MessageType::Request:
    case Dhcp6MessageType::Renew:
      if (client_id.empty() || !ours) return;
      action = IaAction::Commit;
      break;
    case Dhcp6MessageType::Rebind:
      if (client_id.empty() || !server_id.empty()) return;
      action = IaAction::Commit;
      break;
    case Dhcp6MessageType::Release:
      if (client_id.empty() || !ours) return;
      action = IaAction::Release;
      break;
    case Dhcp6MessageType::Decline:
      if (client_id.empty() || !ours) return;
      action = IaAction::Decline;
      break;
    case Dhcp6MessageType::Confirm:
      if (client_id.empty() || !server_id.empty() || !has_ia) return;
      action = IaAction::Confirm;
      break;
    case Dhcp6MessageType::InformationRequest:
      if ((!server_id.empty() && !ours) || has_ia) return;
      action = IaAction::Confirm;  // no IAs: only the configuration below
      break;
    default:
      st.ctr.drop_unsupported++;  // server messages from a guest, relays
      return;
  }

  const MutBytes room = st.out.payload();
  Dhcp6Writer w(room.subspan(kUdpHeader), reply_type, m->xid());
  w.option(dhcp6_opt::kServerId, st.server_duid);
  if (!client_id.empty()) w.option(dhcp6_opt::kClientId, client_id);
  if (m->type() == Dhcp6MessageType::Solicit && action == IaAction::Commit) w.option(dhcp6_opt::kRapidCommit, {});

  const std::string_view duid(reinterpret_cast<const char*>(client_id.data()), client_id.size());
  const Nanos lease_time = st.config.lease_time;
  const std::uint32_t valid = seconds(lease_time);
  bool all_on_link = true;
  m->for_each_ia_na([&](const Dhcp6IaNa& ia) {
    State::Lease* l = st.find(duid, ia.iaid);
    // A binding belongs to the guest that got it: another guest presenting
    // the same DUID and IAID does not take it over.
    const bool foreign = l && (l->port != port || l->mac != src_mac) && l->bound;
    if (action == IaAction::Release || action == IaAction::Decline) {
      if (l && !foreign) {
        if (st.neigh && l->bound) st.neigh->on_release(port, src_mac, IpAddr(l->addr));
        if (action == IaAction::Decline) {
          if (st.declined.size() >= st.config.max_leases) st.declined.erase(st.declined.begin());
          st.declined.push_back({l->addr, now + lease_time});
        }
        std::erase_if(st.leases, [&](const State::Lease& x) { return &x == l; });
      }
      return;
    }
    if (action == IaAction::Confirm) {
      if (auto a = ia.first_addr(); a && !st.config.net6.contains(a->addr)) all_on_link = false;
      return;
    }
    w.begin_ia_na(ia.iaid, valid / 2, valid / 5 * 4);
    if (foreign) {
      st.ctr.drop_spoofed++;
      w.status(Dhcp6Status::NoBinding, "this IA belongs to another guest");
      w.end();
      return;
    }
    if (!l) {
      std::optional<Ipv6Addr> addr;
      if (st.leases.size() >= st.config.max_leases) {
        st.ctr.dhcp6_no_addrs++;
      } else if (st.leases_on_port(port) >= st.config.max_leases_per_port) {
        st.ctr.dhcp6_port_limit++;
      } else if (auto hint = ia.first_addr(); hint && st.hint_ok(hint->addr, port, src_mac, now)) {
        addr = hint->addr;
      } else {
        addr = st.allocate(port, src_mac, now);
      }
      if (!addr) {
        w.status(Dhcp6Status::NoAddrsAvail, "no addresses available");
        w.end();
        return;
      }
      st.leases.push_back({std::string(duid), ia.iaid, *addr, port, src_mac, 0, false});
      l = &st.leases.back();
    }
    l->port = port;
    l->mac = src_mac;
    if (action == IaAction::Commit) {
      l->bound = true;
      l->expires = now + lease_time;
      if (st.neigh) st.neigh->on_lease(port, src_mac, IpAddr(l->addr), now);
    } else if (!l->bound) {
      l->expires = now + kAdvertiseHold;
    }
    w.begin_ia_addr(l->addr, valid, valid);
    w.end();
    w.end();
  });

  if (action == IaAction::Release || action == IaAction::Decline) w.status(Dhcp6Status::Success, "");
  if (m->type() == Dhcp6MessageType::Confirm) {
    w.status(all_on_link ? Dhcp6Status::Success : Dhcp6Status::NotOnLink, "");
  }
  const Ipv6Addr dns[] = {st.s.dns};
  if (st.s.announce_dns) w.option_addrs(dhcp6_opt::kDnsServers, dns);
  if (st.s.announce_dns && !st.s.domain.empty()) {
    const std::string_view search[] = {st.s.domain};
    w.option_domains(dhcp6_opt::kDomainList, search);
  }
  const std::size_t len = w.finish();
  if (len == 0) return;
  UdpRepr reply{kDhcp6ServerPort, kDhcp6ClientPort, static_cast<std::uint16_t>(len)};
  reply.emit(room.first(kUdpHeader + len), IpAddr(st.link_local), IpAddr(src));
  st.out.send(src_mac, st.link_local, src, IpProtocol::Udp, 255, kUdpHeader + len);
  st.ctr.dhcp6_replies++;
}

nlohmann::json Dhcp6Server::status() const {
  const Nanos now = monotonic_now();
  nlohmann::json out = nlohmann::json::array();
  for (const auto& l : state_->leases) {
    const Bytes duid(reinterpret_cast<const std::uint8_t*>(l.duid.data()), l.duid.size());
    out.push_back({{"ip", l.addr.to_string()},
                   {"duid", hex(duid)},
                   {"iaid", l.iaid},
                   {"mac", l.mac.to_string()},
                   {"port", l.port},
                   {"state", l.bound ? "bound" : "advertised"},
                   {"expires_in_s", l.expires > now ? (l.expires - now) / kSeconds : Nanos{0}}});
  }
  return out;
}

}  // namespace vnet::nat
