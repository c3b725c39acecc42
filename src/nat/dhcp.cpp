// DHCPv4 server of a NAT network (RFC 2131, options RFC 2132/3397).
//
// Theory of operation: the gateway hands us every UDP datagram a guest sends
// to port 67. Each message is parsed with wire::DhcpPacket; anything that is
// not a well-formed Ethernet BOOTREQUEST carrying option 53 is dropped and
// counted as drop_malformed (plain BOOTP without option 53 is not served).
//
// Leases are keyed by the client identifier (option 61) when the client
// sends one, else by chaddr. A record is created on DISCOVER (state
// "offered", held kOfferHold) and becomes "bound" on an ACK (held for
// config().lease_time). Records are not deleted when they expire: a guest
// that reboots, even long after, gets its old address back unless the
// address was reclaimed for someone else. Reclaiming only happens when the
// pool or the max_leases limit is exhausted, oldest expiry first. RELEASE
// deletes the record; DECLINE deletes it and keeps the address out of the
// pool for kDeclineHold. Static reservations (reserve()) pin a MAC to an
// address, which may lie outside the dynamic pool; nobody else gets it.
//
// The dynamic pool runs from config().dhcp_start to the end of the network,
// skipping the network, broadcast, gateway and DNS addresses. Picking an
// address scans from dhcp_start and stops at the first free one, so it costs
// O(occupied addresses), bounded by max_leases + declined + reserved.
//
// REQUEST states (RFC 2131 4.3.2): SELECTING (server id present: ours, or
// the client took another server's offer and we forget ours), INIT-REBOOT
// (requested IP, no server id), RENEWING/REBINDING (ciaddr). An address that
// belongs to another client, lies outside the pool/network, or differs from
// the client's own record gets a NAK; a client we have no record of (vnet
// restarted) gets its address if it is free.
//
// Guests are held to themselves: a message whose chaddr is not the source
// MAC of the frame that carried it is dropped (dhcp_chaddr_mismatch), so a
// guest can neither take leases in another guest's name nor mint leases for
// invented MACs; and one port holds at most config().max_leases_per_port
// unexpired leases (offers included) at once (more: dhcp_port_limit), so a
// guest cycling random MACs on its port cannot drain the pool: a new guest
// on another port still gets an address. Leased and released addresses are
// told to the neighbour table (nat/neigh), which binds them to the guest's
// port and MAC; an address a statically configured guest is using is not
// offered.
//
// Replies go from the gateway to port 68: broadcast when the client set the
// broadcast flag or has no address yet (it cannot answer ARP), and for every
// NAK; otherwise unicast to ciaddr if the gateway knows its MAC. Messages
// are built in place in the gateway's l4 buffer, padded to 300 bytes for old
// PXE/DOS clients. No timers: expiry is evaluated when messages arrive.
#include "nat/dhcp.hpp"

#include <algorithm>
#include <ctime>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/log.hpp"
#include "nat/neigh.hpp"
#include "wire/dhcp.hpp"

namespace vnet::nat {

using namespace vnet::wire;

namespace {

constexpr std::uint16_t kServerPort = 67;
constexpr std::uint16_t kClientPort = 68;
// How long an unanswered OFFER keeps its address for the client.
constexpr Nanos kOfferHold = 60 * kSeconds;
// How long a DECLINEd address (in use by someone else) stays out of the pool.
constexpr Nanos kDeclineHold = 600 * kSeconds;
// Without option 57 a client must accept 576-byte IP datagrams (RFC 2131 2).
constexpr std::size_t kDefaultMaxMessage = 576 - 20 - 8;
constexpr std::size_t kMaxHostname = 63;
// A guest looping DISCOVERs on a full pool must not flood the log.
constexpr Nanos kExhaustedWarnInterval = 10 * kSeconds;

enum class LeaseState { Offered, Bound };

struct Lease {
  MacAddr mac;
  PortId port = 0;  // where the client's messages come in
  std::string client_id;  // raw option 61, empty when the client sent none
  Ipv4Addr ip;
  std::string hostname;
  Nanos expires = 0;
  LeaseState state = LeaseState::Offered;
};

struct Declined {
  MacAddr mac;
  Nanos until = 0;
  PortId port = 0;
};

std::string client_key(const DhcpPacket& p) {
  const Bytes cid = p.client_id();
  std::string key;
  if (!cid.empty()) {
    key.push_back('c');
    key.append(reinterpret_cast<const char*>(cid.data()), cid.size());
  } else {
    key.push_back('m');
    key.append(reinterpret_cast<const char*>(p.chaddr().data()), p.chaddr().size());
  }
  return key;
}

// Hostnames end up in logs and JSON: keep them to DNS-safe characters.
std::string sanitize_hostname(Bytes raw) {
  std::string out;
  for (std::uint8_t c : raw.first(std::min(raw.size(), kMaxHostname))) {
    if (c == 0) break;
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == '_';
    out.push_back(ok ? static_cast<char>(c) : '-');
  }
  return out;
}

std::string hex(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::uint32_t lease_seconds(Nanos t) {
  const Nanos s = t / kSeconds;
  // 0xffffffff would mean "infinite" to the guest.
  return static_cast<std::uint32_t>(std::clamp<Nanos>(s, 1, 0xfffffffe));
}

}  // namespace

struct DhcpServer::State {
  GuestIo& io;
  NeighTable* neigh;
  PortId port = 0;  // the port the message being handled came in on
  std::unordered_map<std::string, Lease> leases;     // by client key
  std::unordered_map<Ipv4Addr, std::string> owner;   // address -> client key
  std::unordered_map<Ipv4Addr, Declined> declined;
  std::unordered_map<MacAddr, Ipv4Addr> reserved;
  // A guest decides how often these happen: each kind of line is rate-limited.
  log::RateLimited exhausted_log{1, kExhaustedWarnInterval};
  log::RateLimited lease_log;

  State(GuestIo& g, NeighTable* n) : io(g), neigh(n) {}
  const NatConfig& cfg() const { return io.config(); }
  NatCounters& counters() { return io.counters(); }

  void handle(const DhcpPacket& p, DhcpMessageType type, Nanos now);
  void on_discover(const DhcpPacket& p, Nanos now);
  void on_request(const DhcpPacket& p, Nanos now);
  void on_decline(const DhcpPacket& p, Nanos now);
  void on_release(const DhcpPacket& p);
  void on_inform(const DhcpPacket& p);

  bool is_special(Ipv4Addr a) const;
  bool in_pool(Ipv4Addr a) const;
  bool is_declined(Ipv4Addr a, Nanos now);
  const Ipv4Addr* reservation_of(const MacAddr& mac) const;
  bool reserved_for_other(Ipv4Addr a, const MacAddr& mac) const;
  bool usable_by(Ipv4Addr a, const MacAddr& mac, Nanos now);
  Lease* current_lease(const std::string& key, const MacAddr& mac);
  Lease* create_lease(const std::string& key, const DhcpPacket& p, Nanos now, std::optional<Ipv4Addr> wanted);
  std::optional<Ipv4Addr> pick_address(const MacAddr& mac, std::optional<Ipv4Addr> wanted, Nanos now);
  std::optional<Ipv4Addr> reclaim(const MacAddr* for_mac, Nanos now);
  void erase(const std::string& key);
  void exhausted(const DhcpPacket& p);
  bool port_full(Nanos now) const;

  void ack(Lease& l, const DhcpPacket& p, Nanos now);
  void nak(const DhcpPacket& p, const char* why);
  void reply(const DhcpPacket& p, DhcpMessageType type, Ipv4Addr yiaddr, bool with_lease, std::string_view hostname);
  Ipv4Addr destination(const DhcpPacket& p, DhcpMessageType type) const;
};

bool DhcpServer::State::is_special(Ipv4Addr a) const {
  const auto& c = cfg();
  return !c.net.contains(a) || a == c.net.network() || a == c.net.broadcast() || a == c.gateway || a == c.dns;
}

bool DhcpServer::State::in_pool(Ipv4Addr a) const {
  return !is_special(a) && a.to_u32() >= cfg().dhcp_start.to_u32();
}

bool DhcpServer::State::is_declined(Ipv4Addr a, Nanos now) {
  auto it = declined.find(a);
  if (it == declined.end()) return false;
  if (it->second.until > now) return true;
  declined.erase(it);
  return false;
}

const Ipv4Addr* DhcpServer::State::reservation_of(const MacAddr& mac) const {
  auto it = reserved.find(mac);
  return it == reserved.end() ? nullptr : &it->second;
}

bool DhcpServer::State::reserved_for_other(Ipv4Addr a, const MacAddr& mac) const {
  for (const auto& [m, ip] : reserved)
    if (ip == a && m != mac) return true;
  return false;
}

// May this client hold address a (ignoring who holds it now)?
bool DhcpServer::State::usable_by(Ipv4Addr a, const MacAddr& mac, Nanos now) {
  if (const Ipv4Addr* r = reservation_of(mac)) return *r == a;
  return in_pool(a) && !reserved_for_other(a, mac) && !is_declined(a, now) &&
         !(neigh && neigh->held_by_other(IpAddr(a), port, mac, now));
}

// Does the current port hold its share of unexpired leases already?
bool DhcpServer::State::port_full(Nanos now) const {
  std::uint32_t held = 0;
  for (const auto& [key, l] : leases)
    if (l.port == port && l.expires > now) held++;
  return held >= cfg().max_leases_per_port;
}

// The client's record, dropped first if a reservation made it stale.
Lease* DhcpServer::State::current_lease(const std::string& key, const MacAddr& mac) {
  auto it = leases.find(key);
  if (it == leases.end()) return nullptr;
  const Ipv4Addr* r = reservation_of(mac);
  if ((r && *r != it->second.ip) || (!r && reserved_for_other(it->second.ip, mac))) {
    erase(key);
    return nullptr;
  }
  return &it->second;
}

void DhcpServer::State::erase(const std::string& key) {
  auto it = leases.find(key);
  if (it == leases.end()) return;
  auto o = owner.find(it->second.ip);
  if (o != owner.end() && o->second == key) owner.erase(o);
  leases.erase(it);
}

// Frees the expired record whose expiry is oldest (and, with for_mac, whose
// address that client may use); returns its address.
std::optional<Ipv4Addr> DhcpServer::State::reclaim(const MacAddr* for_mac, Nanos now) {
  const std::string* victim = nullptr;
  Nanos oldest = now;
  for (const auto& [key, l] : leases) {
    if (l.expires >= oldest) continue;
    if (for_mac && !usable_by(l.ip, *for_mac, now)) continue;
    victim = &key;
    oldest = l.expires;
  }
  if (!victim) return std::nullopt;
  const Ipv4Addr ip = leases.at(*victim).ip;
  log::debug("dhcp: reclaiming expired lease {}", ip.to_string());
  erase(std::string(*victim));
  return ip;
}

std::optional<Ipv4Addr> DhcpServer::State::pick_address(const MacAddr& mac, std::optional<Ipv4Addr> wanted,
                                                        Nanos now) {
  if (const Ipv4Addr* r = reservation_of(mac)) {
    // A static address wins over whoever holds it dynamically.
    if (auto o = owner.find(*r); o != owner.end()) erase(std::string(o->second));
    return *r;
  }
  if (wanted && !owner.contains(*wanted) && usable_by(*wanted, mac, now)) return wanted;
  const std::uint32_t last = cfg().net.broadcast().to_u32();
  for (std::uint32_t a = std::max(cfg().dhcp_start.to_u32(), cfg().net.network().to_u32()); a < last; ++a) {
    const Ipv4Addr ip = Ipv4Addr::from_u32(a);
    if (!owner.contains(ip) && usable_by(ip, mac, now)) return ip;
  }
  return reclaim(&mac, now);
}

Lease* DhcpServer::State::create_lease(const std::string& key, const DhcpPacket& p, Nanos now,
                                       std::optional<Ipv4Addr> wanted) {
  if (port_full(now)) {
    counters().dhcp_port_limit++;
    return nullptr;
  }
  if (leases.size() >= cfg().max_leases && !reclaim(nullptr, now)) return nullptr;
  auto ip = pick_address(p.client_mac(), wanted, now);
  if (!ip) return nullptr;
  Lease l;
  l.mac = p.client_mac();
  l.port = port;
  const Bytes cid = p.client_id();
  l.client_id.assign(reinterpret_cast<const char*>(cid.data()), cid.size());
  l.ip = *ip;
  l.expires = now + kOfferHold;
  owner[*ip] = key;
  return &(leases[key] = std::move(l));
}

void DhcpServer::State::exhausted(const DhcpPacket& p) {
  counters().dhcp_exhausted++;
  exhausted_log.warn("dhcp: no address for {} on {} (pool or max_leases {} exhausted)", p.client_mac().to_string(),
            cfg().net.to_string(), cfg().max_leases);
}

void DhcpServer::State::handle(const DhcpPacket& p, DhcpMessageType type, Nanos now) {
  switch (type) {
    case DhcpMessageType::Discover: on_discover(p, now); break;
    case DhcpMessageType::Request: on_request(p, now); break;
    case DhcpMessageType::Decline: on_decline(p, now); break;
    case DhcpMessageType::Release: on_release(p); break;
    case DhcpMessageType::Inform: on_inform(p); break;
    default: counters().drop_malformed++; break;  // server messages sent by a client
  }
}

void DhcpServer::State::on_discover(const DhcpPacket& p, Nanos now) {
  const std::string key = client_key(p);
  Lease* l = current_lease(key, p.client_mac());
  if (!l) l = create_lease(key, p, now, p.requested_ip());
  if (!l) {
    exhausted(p);
    return;
  }
  l->mac = p.client_mac();
  if (auto h = sanitize_hostname(p.hostname()); !h.empty()) l->hostname = std::move(h);
  // A bound, unexpired lease stays bound; anything else is held for the offer.
  if (l->state != LeaseState::Bound || l->expires <= now) {
    l->state = LeaseState::Offered;
    l->expires = now + kOfferHold;
  }
  reply(p, DhcpMessageType::Offer, l->ip, true, l->hostname);
}

void DhcpServer::State::on_request(const DhcpPacket& p, Nanos now) {
  const std::string key = client_key(p);
  Lease* l = current_lease(key, p.client_mac());
  const auto sid = p.server_id();
  if (sid && *sid != cfg().gateway) {
    // SELECTING another server's offer: release what we offered.
    if (l && l->state == LeaseState::Offered) erase(key);
    return;
  }
  const Ipv4Addr target = p.requested_ip().value_or(p.ciaddr());
  if (target.is_unspecified()) return nak(p, "no address requested");
  if (l) {
    if (l->ip != target) return nak(p, "not your address");
    return ack(*l, p, now);
  }
  // No record (a new vnet, or a forgotten offer): grant the address if free.
  if (owner.contains(target) || !usable_by(target, p.client_mac(), now)) return nak(p, "address not available");
  l = create_lease(key, p, now, target);
  if (!l || l->ip != target) {
    if (l) erase(key);
    return nak(p, "address not available");
  }
  ack(*l, p, now);
}

void DhcpServer::State::on_decline(const DhcpPacket& p, Nanos now) {
  const std::string key = client_key(p);
  Lease* l = current_lease(key, p.client_mac());
  const auto req = p.requested_ip();
  if (!l || !req || *req != l->ip) return;
  lease_log.warn("dhcp: {} declined {} (address in use on the network?)", p.client_mac().to_string(), req->to_string());
  erase(key);
  // DECLINE keeps an address out of the pool: a port may hold only its
  // share of those too, or a DORA+DECLINE loop would drain the pool.
  std::uint32_t held = 0;
  for (const auto& [ip, d] : declined)
    if (d.port == port && d.until > now) held++;
  if (held >= cfg().max_leases_per_port) {
    counters().dhcp_port_limit++;
    return;
  }
  if (declined.size() >= cfg().max_leases) {
    auto oldest = std::min_element(declined.begin(), declined.end(),
                                   [](const auto& a, const auto& b) { return a.second.until < b.second.until; });
    declined.erase(oldest);
  }
  declined[*req] = Declined{p.client_mac(), now + kDeclineHold, port};
}

void DhcpServer::State::on_release(const DhcpPacket& p) {
  const std::string key = client_key(p);
  Lease* l = current_lease(key, p.client_mac());
  if (!l || l->ip != p.ciaddr()) return;
  lease_log.info("dhcp: {} released {}", p.client_mac().to_string(), l->ip.to_string());
  if (neigh) neigh->on_release(port, l->mac, IpAddr(l->ip));
  erase(key);
}

void DhcpServer::State::on_inform(const DhcpPacket& p) {
  if (p.ciaddr().is_unspecified()) {
    counters().drop_malformed++;
    return;
  }
  counters().dhcp_acks++;
  reply(p, DhcpMessageType::Ack, Ipv4Addr{}, false, sanitize_hostname(p.hostname()));
}

void DhcpServer::State::ack(Lease& l, const DhcpPacket& p, Nanos now) {
  l.mac = p.client_mac();
  if (auto h = sanitize_hostname(p.hostname()); !h.empty()) l.hostname = std::move(h);
  if (l.state != LeaseState::Bound) {
    lease_log.info("dhcp: {} -> {}{}{}", l.mac.to_string(), l.ip.to_string(), l.hostname.empty() ? "" : " ",
              l.hostname);
  }
  l.state = LeaseState::Bound;
  l.expires = now + cfg().lease_time;
  l.port = port;
  if (neigh) neigh->on_lease(port, l.mac, IpAddr(l.ip), now);
  counters().dhcp_acks++;
  reply(p, DhcpMessageType::Ack, l.ip, true, l.hostname);
}

void DhcpServer::State::nak(const DhcpPacket& p, const char* why) {
  counters().dhcp_naks++;
  log::debug("dhcp: NAK to {}: {}", p.client_mac().to_string(), why);
  reply(p, DhcpMessageType::Nak, Ipv4Addr{}, false, {});
}

Ipv4Addr DhcpServer::State::destination(const DhcpPacket& p, DhcpMessageType type) const {
  // RFC 2131 4.1: a client without an address cannot answer the ARP a
  // unicast would need, and NAKs must reach a client whose address is wrong.
  if (type == DhcpMessageType::Nak || p.broadcast_flag() || p.ciaddr().is_unspecified()) return Ipv4Addr::broadcast();
  if (io.guest_mac(p.ciaddr())) return p.ciaddr();
  return Ipv4Addr::broadcast();
}

void DhcpServer::State::reply(const DhcpPacket& p, DhcpMessageType type, Ipv4Addr yiaddr, bool with_lease,
                              std::string_view hostname) {
  const auto& c = cfg();
  const bool full = type != DhcpMessageType::Nak;
  DhcpReplyHeader h;
  h.xid = p.xid();
  h.flags = p.flags() & DhcpPacket::kBroadcastFlag;
  if (type == DhcpMessageType::Ack) h.ciaddr = p.ciaddr();
  h.yiaddr = yiaddr;
  if (full) h.siaddr = c.gateway;
  h.giaddr = p.giaddr();
  std::copy_n(p.bytes().begin() + DhcpPacket::kChaddrOffset, DhcpPacket::kChaddrLen, h.chaddr.begin());
  if (full && c.bootfile.size() < DhcpPacket::kFileLen) h.file = c.bootfile;

  std::size_t limit = kDefaultMaxMessage;
  if (auto o = p.find(dhcp_opt::kMaxMessageSize); o && o->data.size() == 2 && load_be16(o->data, 0) > 576)
    limit = load_be16(o->data, 0) - 28u;
  MutBytes l4 = io.l4_buffer();
  if (l4.size() < 8) return;
  MutBytes out = l4.subspan(8, std::min(l4.size() - 8, limit));
  DhcpWriter w(out, h);
  w.option_u8(dhcp_opt::kMessageType, static_cast<std::uint8_t>(type));
  w.option_addr(dhcp_opt::kServerId, c.gateway);
  if (full) {
    if (with_lease) {
      const std::uint32_t secs = lease_seconds(c.lease_time);
      w.option_u32(dhcp_opt::kLeaseTime, secs);
      w.option_u32(dhcp_opt::kRenewalTime, secs / 2);
      w.option_u32(dhcp_opt::kRebindingTime, static_cast<std::uint32_t>(std::uint64_t{secs} * 7 / 8));
    }
    w.option_addr(dhcp_opt::kSubnetMask, c.net.netmask());
    if (c.offer_router) w.option_addr(dhcp_opt::kRouter, c.router.value_or(c.gateway));
    if (c.dns_forwarder) w.option_addr(dhcp_opt::kDns, c.dns);
    w.option_u16(dhcp_opt::kInterfaceMtu, static_cast<std::uint16_t>(std::clamp<std::uint32_t>(c.mtu, 68, 65535)));
    w.option_addr(dhcp_opt::kBroadcastAddr, c.net.broadcast());
    if (!hostname.empty()) w.option_text(dhcp_opt::kHostname, hostname);
    if (!c.domain.empty()) {
      w.option_text(dhcp_opt::kDomainName, c.domain);
      std::uint8_t enc[256];
      if (std::size_t n = dhcp_encode_domain(c.domain, enc)) w.option(dhcp_opt::kDomainSearch, Bytes(enc, n));
    }
    if (!c.bootfile.empty()) {
      w.option_text(dhcp_opt::kTftpServer, c.gateway.to_string());
      w.option_text(dhcp_opt::kBootfile, c.bootfile);
    }
  } else {
    w.option_text(dhcp_opt::kMessage, "address not available");
  }
  const std::size_t len = w.finish();
  if (len == 0) return;
  io.send_udp(c.gateway, kServerPort, destination(p, type), kClientPort, out.first(len));
}

DhcpServer::DhcpServer(GuestIo& io, NeighTable* neigh) : state_(std::make_unique<State>(io, neigh)) {}
DhcpServer::~DhcpServer() = default;

void DhcpServer::on_message(const MacAddr& src_mac, Bytes payload, PortId port) {
  auto p = DhcpPacket::parse(payload);
  if (!p || p->op() != DhcpPacket::kBootRequest || !p->is_ethernet()) {
    state_->counters().drop_malformed++;
    log::debug("dhcp: dropped malformed message: {}", p ? "not an Ethernet BOOTREQUEST" : to_string(p.error()));
    return;
  }
  if (p->client_mac() != src_mac) {
    // Only relay agents speak for other MACs, and there are none on a NAT
    // network's own segment: this is a guest asking in someone else's name.
    state_->counters().dhcp_chaddr_mismatch++;
    log::debug("dhcp: dropped message for {} sent by {}", p->client_mac().to_string(), src_mac.to_string());
    return;
  }
  auto type = p->message_type();
  if (!type) {
    state_->counters().drop_malformed++;
    log::debug("dhcp: dropped message without a valid option 53 from {}", p->client_mac().to_string());
    return;
  }
  state_->port = port;
  state_->handle(*p, *type, monotonic_now());
}

void DhcpServer::reserve(const MacAddr& mac, Ipv4Addr addr) {
  if (state_->is_special(addr)) {
    log::warn("dhcp: reservation {} for {} is not a usable address of {}", addr.to_string(), mac.to_string(),
              state_->cfg().net.to_string());
    return;
  }
  std::erase_if(state_->reserved, [&](const auto& kv) { return kv.second == addr; });
  state_->reserved[mac] = addr;
  // Whoever holds the address dynamically loses it at the next renewal.
  if (auto o = state_->owner.find(addr); o != state_->owner.end() && state_->leases.at(o->second).mac != mac)
    state_->erase(std::string(o->second));
}

std::optional<Ipv4Addr> DhcpServer::lease_of(const MacAddr& mac) const {
  const Lease* best = nullptr;
  for (const auto& [key, l] : state_->leases)
    if (l.mac == mac && l.state == LeaseState::Bound && (!best || l.expires > best->expires)) best = &l;
  if (!best) return std::nullopt;
  return best->ip;
}

nlohmann::json DhcpServer::status() const {
  const Nanos now = monotonic_now();
  auto remaining = [now](Nanos until) { return until > now ? (until - now) / kSeconds : Nanos{0}; };
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [key, l] : state_->leases) {
    const Ipv4Addr* r = state_->reservation_of(l.mac);
    nlohmann::json j = {{"mac", l.mac.to_string()},
                        {"ip", l.ip.to_string()},
                        {"hostname", l.hostname},
                        {"expires_in_s", remaining(l.expires)},
                        {"state", l.state == LeaseState::Bound ? "bound" : "offered"},
                        {"static", r && *r == l.ip}};
    if (!l.client_id.empty()) j["client_id"] = hex(l.client_id);
    out.push_back(std::move(j));
  }
  for (const auto& [ip, d] : state_->declined) {
    if (d.until <= now) continue;
    out.push_back({{"mac", d.mac.to_string()},
                   {"ip", ip.to_string()},
                   {"hostname", ""},
                   {"expires_in_s", remaining(d.until)},
                   {"state", "declined"},
                   {"static", false}});
  }
  return out;
}

namespace {

// Wall-clock seconds now: lease expiries are saved as wall-clock times, as
// the monotonic clock restarts with the machine.
std::int64_t unix_now_s() { return static_cast<std::int64_t>(::time(nullptr)); }

std::optional<std::string> unhex(const std::string& text) {
  if (text.size() % 2) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 2) {
    auto digit = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int hi = digit(text[i]), lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

}  // namespace

nlohmann::json DhcpServer::export_leases() const {
  const Nanos now = monotonic_now();
  const std::int64_t unix_now = unix_now_s();
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [key, l] : state_->leases) {
    if (l.state != LeaseState::Bound || l.expires <= now) continue;
    out.push_back({{"key", hex(key)},
                   {"mac", l.mac.to_string()},
                   {"ip", l.ip.to_string()},
                   {"hostname", l.hostname},
                   {"expires_unix_s", unix_now + (l.expires - now) / kSeconds}});
  }
  return out;
}

std::size_t DhcpServer::import_leases(const nlohmann::json& saved) {
  if (!saved.is_array()) return 0;
  const Nanos now = monotonic_now();
  const std::int64_t unix_now = unix_now_s();
  std::size_t restored = 0;
  for (const auto& entry : saved) {
    if (!entry.is_object() || state_->leases.size() >= state_->cfg().max_leases) continue;
    const auto text = [&entry](const char* k) {
      auto it = entry.find(k);
      return it != entry.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    auto key = unhex(text("key"));
    auto mac = MacAddr::parse(text("mac"));
    auto ip = Ipv4Addr::parse(text("ip"));
    auto expires = entry.find("expires_unix_s");
    if (!key || key->empty() || key->size() > 256 || ((*key)[0] != 'c' && (*key)[0] != 'm') || !mac || !ip ||
        expires == entry.end() || !expires->is_number_integer())
      continue;
    const std::int64_t left = expires->get<std::int64_t>() - unix_now;
    if (left <= 0 || left > 365LL * 86400) continue;
    state_->port = 0;
    if (state_->leases.contains(*key) || state_->owner.contains(*ip) || !state_->usable_by(*ip, *mac, now)) continue;
    Lease l;
    l.mac = *mac;
    if ((*key)[0] == 'c') l.client_id = key->substr(1);
    l.ip = *ip;
    const std::string hostname = text("hostname");
    l.hostname = sanitize_hostname(Bytes(reinterpret_cast<const std::uint8_t*>(hostname.data()), hostname.size()));
    l.expires = now + left * kSeconds;
    l.state = LeaseState::Bound;
    state_->owner[*ip] = *key;
    state_->leases[*key] = std::move(l);
    restored++;
  }
  return restored;
}

}  // namespace vnet::nat
