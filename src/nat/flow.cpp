// Flow admission, per-guest accounting and the send-buffer budget.
//
// Theory of operation: each translator (tcp, udp, icmp) keeps its flows'
// protocol state in its own FlowMap keyed by FlowKey; this table decides who
// may open one more, counts flows per guest and per network, and owns the
// network's budget of host send buffers. The datagram translators expire
// idle flows with the one IdleSweep (flow.hpp); TCP flows end with their
// connection and are freed after the event that ended them (tcp.cpp).
//
// Guests: a flow counts against the guest that owns its source address, the
// MAC that GuestIo::guest_mac() returns (a binding of port and MAC that a
// guest cannot take over by spoofing sources); an address with no binding
// yet counts as itself. The identity is fixed when the flow is added, so the
// same identity is released when it ends.
//
// Caps (NatConfig): max_flows_per_guest and max_flows count TCP (not in
// TIME_WAIT), UDP and ICMP flows together; max_pending_connects_per_guest
// and max_pending_connects count TCP connects in progress. A refusal is
// counted twice: drop_flow_limit (any cap) and its cause (drop_guest_flows,
// drop_net_flows, drop_guest_connects, drop_net_connects). Per-guest caps are
// well below the network's, so one guest at its caps leaves room for others.
//
// Send buffers: the TCP translator advertises the free space of a host
// socket's send buffer as the guest's window, so the buffer's size is the
// flow's upload window (see tcp.cpp). A fixed large buffer per flow would let
// a few thousand flows pin the host's TCP memory, so the network has a
// budget (tcp_sndbuf_budget, kernel accounting: SO_SNDBUF as read back). A
// new flow gets its fair share, budget / flows, capped at tcp_sndbuf_max and
// at what is left, and never less than tcp_sndbuf_min. Every time a flow
// comes or goes the budget's epoch moves; each flow re-sizes toward the new
// fair share on its next segment (rebalance_send_buffer: one comparison when
// nothing changed). A buffer never shrinks below what it already holds
// (wmem_queued), as the kernel cannot give that back before the peer reads.
// Without CAP_NET_ADMIN the kernel caps each buffer at 2 x wmem_max.
//
// Memory: flows are small (tcp.cpp, udp.cpp), but glibc keeps freed heap for
// reuse; after a translator freed many flows, malloc_trim(0) hands it back,
// at most once a second, and again while the burst of frees trails off.
#include "nat/flow.hpp"

#include <malloc.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "nat/guest_io.hpp"

namespace vnet::nat {

namespace {

constexpr std::size_t kTrimAfterFreed = 256;
constexpr Nanos kTrimDelay = 1 * kSeconds;

}  // namespace

FlowTable::FlowTable(GuestIo& io) : io_(io), trim_timer_(io.loop(), [this] { trim(); }) {}

FlowTable::~FlowTable() = default;

GuestId FlowTable::guest_of(const wire::IpAddr& addr) const {
  GuestId g;
  if (const wire::MacAddr* mac = io_.guest_mac(addr)) {
    std::copy(mac->octets.begin(), mac->octets.end(), g.id.begin());
    g.by_mac = true;
  } else {
    const wire::Bytes b = addr.bytes();
    std::copy(b.begin(), b.end(), g.id.begin());
  }
  return g;
}

bool FlowTable::admit(const GuestId& guest, FlowKind) {
  const NatConfig& cfg = io_.config();
  NatCounters& c = io_.counters();
  if (flows_ >= cfg.max_flows) {
    c.drop_flow_limit++;
    c.drop_net_flows++;
    return false;
  }
  auto it = guests_.find(guest);
  if (it != guests_.end() && it->second.flows >= cfg.max_flows_per_guest) {
    c.drop_flow_limit++;
    c.drop_guest_flows++;
    return false;
  }
  return true;
}

void FlowTable::add(const GuestId& guest, FlowKind) {
  guests_[guest].flows++;
  flows_++;
}

void FlowTable::remove(const GuestId& guest, FlowKind) {
  auto it = guests_.find(guest);
  if (it == guests_.end() || it->second.flows == 0) return;
  it->second.flows--;
  flows_--;
  if (it->second.flows == 0 && it->second.pending == 0) guests_.erase(it);
}

bool FlowTable::admit_connect(const GuestId& guest) {
  const NatConfig& cfg = io_.config();
  NatCounters& c = io_.counters();
  auto it = guests_.find(guest);
  if (it != guests_.end() && it->second.pending >= cfg.max_pending_connects_per_guest) {
    c.drop_flow_limit++;
    c.drop_guest_connects++;
    return false;
  }
  if (pending_ >= cfg.max_pending_connects) {
    c.drop_flow_limit++;
    c.drop_net_connects++;
    return false;
  }
  return true;
}

void FlowTable::add_connect(const GuestId& guest) {
  guests_[guest].pending++;
  pending_++;
}

void FlowTable::remove_connect(const GuestId& guest) {
  auto it = guests_.find(guest);
  if (it == guests_.end() || it->second.pending == 0) return;
  it->second.pending--;
  pending_--;
  if (it->second.flows == 0 && it->second.pending == 0) guests_.erase(it);
}

std::size_t FlowTable::flows_of(const GuestId& guest) const {
  auto it = guests_.find(guest);
  return it == guests_.end() ? 0 : it->second.flows;
}

// ---------------------------------------------------------------- send buffers

std::uint32_t FlowTable::fair_share() const {
  const NatConfig& cfg = io_.config();
  const std::uint64_t share = cfg.tcp_sndbuf_budget / std::max<std::size_t>(tcp_sockets_, 1);
  return static_cast<std::uint32_t>(
      std::clamp<std::uint64_t>(share, cfg.tcp_sndbuf_min, std::max(cfg.tcp_sndbuf_max, cfg.tcp_sndbuf_min)));
}

// Every new connection comes through here, so it costs as few system calls
// as it can: an unprivileged engine asks for SO_SNDBUFFORCE only until the
// kernel first refuses it, and a request like the last one is granted what
// the last one was (the kernel's answer depends only on the request and
// net.core.wmem_max) without reading it back.
void FlowTable::set_sndbuf(int fd, SendBuffer& sb, std::uint32_t want) {
  // The kernel doubles the request (its bookkeeping overhead): ask for half.
  int request = static_cast<int>(want / 2);
  bool forced = false;
  if (!sndbuf_force_denied_) {
    forced = setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &request, sizeof request) == 0;
    if (!forced && errno == EPERM) sndbuf_force_denied_ = true;
  }
  if (!forced) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &request, sizeof request);
  std::uint32_t now = want;
  if (request == sndbuf_memo_.request && forced == sndbuf_memo_.forced) {
    now = sndbuf_memo_.granted;
  } else {
    int got = 0;
    socklen_t len = sizeof got;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got, &len) == 0 && got > 0) {
      now = static_cast<std::uint32_t>(got);
      sndbuf_memo_ = {request, forced, now};
    }
  }
  sndbuf_in_use_ = sndbuf_in_use_ - sb.granted + now;
  sb.granted = now;
}

void FlowTable::size_send_buffer(int fd, SendBuffer& sb) {
  const NatConfig& cfg = io_.config();
  tcp_sockets_++;
  sndbuf_epoch_++;
  const std::uint64_t left = cfg.tcp_sndbuf_budget > sndbuf_in_use_ ? cfg.tcp_sndbuf_budget - sndbuf_in_use_ : 0;
  const std::uint32_t want = static_cast<std::uint32_t>(
      std::max<std::uint64_t>(std::min<std::uint64_t>(fair_share(), left), cfg.tcp_sndbuf_min));
  set_sndbuf(fd, sb, want);
  sb.epoch = sndbuf_epoch_;
}

void FlowTable::rebalance_send_buffer(int fd, SendBuffer& sb, std::uint32_t queued) {
  if (sb.epoch == sndbuf_epoch_ || sb.granted == 0) return;
  sb.epoch = sndbuf_epoch_;
  const NatConfig& cfg = io_.config();
  const std::uint32_t share = fair_share();
  std::uint32_t want = share;
  if (share > sb.granted) {
    // Grow only into what the budget has left.
    const std::uint64_t left = cfg.tcp_sndbuf_budget > sndbuf_in_use_ ? cfg.tcp_sndbuf_budget - sndbuf_in_use_ : 0;
    want = static_cast<std::uint32_t>(std::min<std::uint64_t>(share, sb.granted + left));
  } else {
    want = std::max(share, queued);
  }
  if (want == sb.granted) return;
  set_sndbuf(fd, sb, want);
}

void FlowTable::release_send_buffer(SendBuffer& sb) {
  if (sb.granted == 0) return;
  sndbuf_in_use_ -= sb.granted;
  sb.granted = 0;
  tcp_sockets_--;
  sndbuf_epoch_++;
}

// ---------------------------------------------------------------- memory

// A burst of closes trails off (flows in TIME_WAIT, slow peers), so after a
// trim for a burst every later free schedules one more, until a trim finds
// that few flows were freed since the last.
void FlowTable::freed(std::size_t n) {
  freed_since_trim_ += n;
  const bool due = freed_since_trim_ >= kTrimAfterFreed || (burst_trailing_ && n > 0);
  if (due && !trim_timer_.armed()) trim_timer_.arm_in(kTrimDelay);
}

void FlowTable::trim() {
  burst_trailing_ = freed_since_trim_ >= kTrimAfterFreed;
  freed_since_trim_ = 0;
  malloc_trim(0);
}

nlohmann::json FlowTable::status() const {
  return {{"flows", flows_},
          {"pending_connects", pending_},
          {"guests", guests_.size()},
          {"max_flows", io_.config().max_flows},
          {"max_flows_per_guest", io_.config().max_flows_per_guest},
          {"sndbuf_in_use", sndbuf_in_use_},
          {"sndbuf_budget", io_.config().tcp_sndbuf_budget}};
}

}  // namespace vnet::nat
