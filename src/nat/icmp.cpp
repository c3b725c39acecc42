// ICMP echo translation, IPv4 and IPv6.
//
// Theory of operation: a guest's echo request to an outside address goes out
// through an unprivileged ICMP datagram socket, socket(AF_INET, SOCK_DGRAM,
// IPPROTO_ICMP) or socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6), which needs
// no root but only a gid inside the sysctl net.ipv4.ping_group_range (one
// sysctl for both families). The kernel replaces the echo identifier with the
// socket's "port" and fills in the checksum, and delivers only replies that
// match it, so one socket per (guest, identifier, target) keeps guests and
// ping sessions apart. A reply comes back as ICMP header + data; the guest
// gets it with its own identifier restored, from the address it pinged (the
// ICMPv6 checksum recomputed over that pseudo-header).
//
// Nothing is ever fabricated: no socket, no reply. When ping sockets are not
// permitted we log one warning naming the sysctl and count icmp_unavailable.
//
// Limits: the FlowTable (flow.cpp) admits each mapping against the guest's
// and the network's flow caps, shared with TCP and UDP (drop_flow_limit).
// Timeout: a mapping idle for 30 s is closed; a sweep runs every 5 s while
// mappings exist. Only echo requests are translated (other types:
// drop_unsupported).
#include "nat/icmp.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "core/log.hpp"
#include "core/sockaddr.hpp"
#include "nat/flow.hpp"
#include "wire/icmp.hpp"

namespace vnet::nat {

using namespace vnet::wire;

namespace {

constexpr Nanos kIdleTimeout = 30 * kSeconds;
constexpr Nanos kSweepInterval = 5 * kSeconds;
constexpr int kMaxReadsPerEvent = 64;

// An echo mapping is keyed by (guest, identifier, host target): FlowKey
// with the identifier as guest_port and remote_port 0.
FlowKey echo_key(const IpAddr& guest, std::uint16_t ident, const IpAddr& target) { return {guest, ident, target, 0}; }

struct EchoFlow {
  FlowKey key;
  GuestId guest;  // whom it counts against (FlowTable)
  IpAddr pinged;  // what the guest addressed (the reply's source)
  UniqueFd sock;
  Nanos last_active = 0;
  Nanos idle_limit() const { return kIdleTimeout; }
};

}  // namespace

struct IcmpTranslator::State {
  explicit State(GuestIo& g)
      : io(g), table(g.flows()), sweep(g.loop(), table, flows, kSweepInterval, [this](const FlowKey& k) { erase(k); }) {}
  ~State() {
    for (auto& [k, f] : flows) io.loop().remove(f->sock.get());
  }

  GuestIo& io;
  FlowTable& table;
  FlowMap<EchoFlow> flows;
  IdleSweep<EchoFlow> sweep;
  bool warned = false;

  EchoFlow* open(const FlowKey& key, const IpAddr& pinged) {
    const GuestId guest = table.guest_of(key.guest);
    if (!table.admit(guest, FlowKind::Icmp)) return nullptr;
    const bool v4 = key.remote.is_v4();
    UniqueFd s(::socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6));
    if (!s) {
      unavailable(errno);
      return nullptr;
    }
    auto f = std::make_unique<EchoFlow>();
    f->key = key;
    f->guest = guest;
    f->pinged = pinged;
    f->sock = std::move(s);
    EchoFlow* raw = f.get();
    flows.emplace(key, std::move(f));
    table.add(guest, FlowKind::Icmp);
    io.loop().add(raw->sock.get(), EPOLLIN, [this, raw](std::uint32_t) { on_readable(*raw); });
    sweep.flow_added();
    return raw;
  }

  void unavailable(int err) {
    io.counters().icmp_unavailable++;
    if (warned) return;
    warned = true;
    if (err == EACCES || err == EPERM) {
      log::warn(
          "nat: guests cannot ping outside addresses: ICMP echo sockets are not permitted for gid {} "
          "(allow it with: sysctl -w net.ipv4.ping_group_range=\"0 2147483647\")",
          static_cast<unsigned>(getgid()));
    } else {
      log::warn("nat: guests cannot ping outside addresses: ICMP echo socket: {}", std::strerror(err));
    }
  }

  void on_readable(EchoFlow& f) {
    const bool v4 = f.pinged.is_v4();
    for (int i = 0; i < kMaxReadsPerEvent; ++i) {
      MutBytes l4 = io.l4_buffer();
      const ssize_t n = ::recv(f.sock.get(), l4.data(), l4.size(), MSG_TRUNC);
      if (n < 0) return;
      if (static_cast<std::size_t>(n) > l4.size()) continue;  // larger than the guest's MTU
      const MutBytes reply = l4.first(static_cast<std::size_t>(n));
      if (!(v4 ? restore_reply4(reply, f) : restore_reply6(reply, f))) continue;
      f.last_active = monotonic_now();
      if (io.send_l4_in_place(f.pinged, f.key.guest, v4 ? IpProtocol::Icmp : IpProtocol::Icmpv6, reply.size()))
        io.counters().icmp_echo_in++;
    }
  }

  // An echo reply as the kernel delivered it, turned into the one the guest
  // expects: its identifier back, the checksum redone.
  static bool restore_reply4(MutBytes reply, const EchoFlow& f) {
    auto parsed = Icmpv4PacketMut::parse(reply);
    if (!parsed || parsed->type() != Icmpv4Type::EchoReply) return false;
    Icmpv4PacketMut pkt = *parsed;
    pkt.set_echo_ident(f.key.guest_port);
    pkt.fill_checksum();
    return true;
  }
  static bool restore_reply6(MutBytes reply, const EchoFlow& f) {
    auto parsed = Icmpv6PacketMut::parse(reply);
    if (!parsed || parsed->type() != Icmpv6Type::EchoReply) return false;
    Icmpv6PacketMut pkt = *parsed;
    pkt.set_echo_ident(f.key.guest_port);
    pkt.fill_checksum(f.pinged.v6(), f.key.guest.v6());
    return true;
  }

  // Sends a guest's echo request (the whole ICMP message) to `target`
  // through the mapping's socket, opening it on the first request.
  void send_echo(const IpAddr& guest, const IpAddr& pinged, std::uint16_t ident, Bytes msg, const IpAddr& target) {
    const FlowKey key = echo_key(guest, ident, target);
    EchoFlow* f = nullptr;
    if (auto it = flows.find(key); it != flows.end()) {
      f = it->second.get();
    } else {
      f = open(key, pinged);
      if (!f) return;
    }
    const SockAddr to = SockAddr::from_ip(target, 0);
    // The kernel rewrites the identifier and the checksum; the rest is the
    // guest's message as it was.
    f->last_active = monotonic_now();
    if (::sendto(f->sock.get(), msg.data(), msg.size(), MSG_DONTWAIT, to.get(), to.length) >= 0)
      io.counters().icmp_echo_out++;
  }

  void erase(const FlowKey& key) {
    auto it = flows.find(key);
    if (it == flows.end()) return;
    io.loop().remove(it->second->sock.get());
    table.remove(it->second->guest, FlowKind::Icmp);
    flows.erase(it);
  }

};

IcmpTranslator::IcmpTranslator(GuestIo& io) : state_(std::make_unique<State>(io)) {}
IcmpTranslator::~IcmpTranslator() = default;

void IcmpTranslator::on_packet(const Ipv4Packet& ip, Ipv4Addr target) {
  State& s = *state_;
  auto icmp = Icmpv4Packet::parse(ip.payload());
  if (!icmp) {
    s.io.counters().drop_malformed++;
    return;
  }
  if (icmp->type() != Icmpv4Type::EchoRequest || icmp->code() != 0) {
    s.io.counters().drop_unsupported++;
    return;
  }
  if (!icmp->verify_checksum()) {
    s.io.counters().drop_bad_checksum++;
    return;
  }
  s.send_echo(IpAddr(ip.src()), IpAddr(ip.dst()), icmp->echo_ident(), icmp->bytes(), IpAddr(target));
}

void IcmpTranslator::on_packet6(const Ipv6Packet& ip, Bytes l4, const Ipv6Addr& target) {
  State& s = *state_;
  auto icmp = Icmpv6Packet::parse(l4);
  if (!icmp) {
    s.io.counters().drop_malformed++;
    return;
  }
  if (icmp->type() != Icmpv6Type::EchoRequest || icmp->code() != 0) {
    s.io.counters().drop_unsupported++;
    return;
  }
  if (!icmp->verify_checksum(ip.src(), ip.dst())) {
    s.io.counters().drop_bad_checksum++;
    return;
  }
  s.send_echo(IpAddr(ip.src()), IpAddr(ip.dst()), icmp->echo_ident(), icmp->bytes(), IpAddr(target));
}

void IcmpTranslator::expire_idle(Nanos now) { state_->sweep.expire(now); }

std::size_t IcmpTranslator::size() const { return state_->flows.size(); }

}  // namespace vnet::nat
