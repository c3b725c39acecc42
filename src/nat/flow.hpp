// Flows of the NAT: the key every translator uses, and the one place that
// decides whether a guest may open another flow (see flow.cpp for the
// theory of operation). Keys are family-agnostic (IPv4 held IPv4-mapped, see
// wire/ipaddr.hpp), so IPv6 flows share the tables with no second copy.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <unordered_map>

#include <nlohmann/json_fwd.hpp>

#include "core/event_loop.hpp"
#include "wire/ipaddr.hpp"
#include "wire/mac.hpp"

namespace vnet::nat {

// A translated flow as the guest sees it. For ICMP echo, guest_port is the
// echo identifier and remote_port is 0.
struct FlowKey {
  wire::IpAddr guest;
  std::uint16_t guest_port = 0;
  wire::IpAddr remote;  // as the guest addresses it
  std::uint16_t remote_port = 0;
  friend bool operator==(const FlowKey&, const FlowKey&) = default;
};

struct FlowKeyHash {
  std::size_t operator()(const FlowKey& k) const noexcept {
    std::uint64_t w[4];
    std::memcpy(w, k.guest.bytes().data(), 16);
    std::memcpy(w + 2, k.remote.bytes().data(), 16);
    std::uint64_t x = (w[0] * 0x9E3779B97F4A7C15ull) ^ (w[1] * 0xC2B2AE3D27D4EB4Full) ^
                      (w[2] * 0x165667B19E3779F9ull) ^ (w[3] * 0x27D4EB2F165667C5ull);
    x ^= (std::uint64_t{k.guest_port} << 16 | k.remote_port) * 0xC2B2AE3D27D4EB4Full;
    x *= 0x9E3779B97F4A7C15ull;
    return static_cast<std::size_t>(x ^ (x >> 29));
  }
};

class GuestIo;

// Who a flow belongs to, for per-guest limits: the MAC bound to the guest's
// address (GuestIo::guest_mac: a port+MAC binding a guest cannot spoof),
// else, for a guest not bound yet, its source address.
struct GuestId {
  std::array<std::uint8_t, 16> id{};
  bool by_mac = false;
  friend bool operator==(const GuestId&, const GuestId&) = default;
};

struct GuestIdHash {
  std::size_t operator()(const GuestId& g) const noexcept {
    std::uint64_t a, b;
    std::memcpy(&a, g.id.data(), 8);
    std::memcpy(&b, g.id.data() + 8, 8);
    std::uint64_t x = (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full) ^ g.by_mac;
    return static_cast<std::size_t>(x ^ (x >> 31));
  }
};

enum class FlowKind : std::uint8_t { Tcp, Udp, Icmp };

// Flow admission and accounting for one NAT network, shared by the TCP, UDP
// and ICMP translators; also the network's budget of host send buffers.
class FlowTable {
 public:
  explicit FlowTable(GuestIo& io);
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  GuestId guest_of(const wire::IpAddr& addr) const;

  // May `guest` open one more flow? Counts the refusal (drop_flow_limit and
  // the cause) when the guest or the network is at its cap. On true the
  // caller must add() the flow.
  bool admit(const GuestId& guest, FlowKind kind);
  void add(const GuestId& guest, FlowKind kind);
  void remove(const GuestId& guest, FlowKind kind);

  // Pending host connects (TCP connect() in progress), capped per guest and
  // per network so that one guest's connects to a black hole leave room for
  // the others'. admit_connect() counts a refusal like admit().
  bool admit_connect(const GuestId& guest);
  void add_connect(const GuestId& guest);
  void remove_connect(const GuestId& guest);

  std::size_t flows() const { return flows_; }
  std::size_t pending_connects() const { return pending_; }
  std::size_t flows_of(const GuestId& guest) const;

  // Host send buffers (see flow.cpp). Sizes are the kernel's accounting
  // (SO_SNDBUF as read back, twice the requested value).
  struct SendBuffer {
    std::uint32_t granted = 0;  // what this socket holds of the budget
    std::uint32_t epoch = 0;    // the budget's epoch when last sized
  };
  // Sizes a new flow's send buffer from the budget.
  void size_send_buffer(int fd, SendBuffer& sb);
  // Re-sizes toward the current fair share when the budget changed since
  // (cheap when it did not); `queued` is the socket's wmem_queued.
  void rebalance_send_buffer(int fd, SendBuffer& sb, std::uint32_t queued);
  void release_send_buffer(SendBuffer& sb);
  // False when the budget changed since `sb` was last sized.
  bool send_buffer_current(const SendBuffer& sb) const { return sb.epoch == sndbuf_epoch_ || sb.granted == 0; }
  std::uint64_t send_buffer_in_use() const { return sndbuf_in_use_; }

  // A translator freed `n` flows: after a burst, and while it trails off,
  // hand memory back to the system (malloc_trim), at most once a second.
  void freed(std::size_t n);

  nlohmann::json status() const;

 private:
  struct Counts {
    std::uint32_t flows = 0, pending = 0;
  };
  std::uint32_t fair_share() const;
  void set_sndbuf(int fd, SendBuffer& sb, std::uint32_t want);
  void trim();

  GuestIo& io_;
  std::unordered_map<GuestId, Counts, GuestIdHash> guests_;
  std::size_t flows_ = 0, pending_ = 0;
  std::size_t tcp_sockets_ = 0;  // flows holding a budgeted send buffer
  std::uint64_t sndbuf_in_use_ = 0;
  std::uint32_t sndbuf_epoch_ = 1;
  bool sndbuf_force_denied_ = false;  // SO_SNDBUFFORCE needs CAP_NET_ADMIN
  struct SendBufferMemo {
    int request = -1;
    bool forced = false;
    std::uint32_t granted = 0;
  } sndbuf_memo_;  // the last request read back
  std::size_t freed_since_trim_ = 0;
  bool burst_trailing_ = false;  // the last trim followed a burst
  Timer trim_timer_;
};

// A translator's flows by key, each owned by the map.
template <class Flow>
using FlowMap = std::unordered_map<FlowKey, std::unique_ptr<Flow>, FlowKeyHash>;

// The idle sweep of the datagram translators (UDP, ICMP): while they have
// flows, every `interval` the flows idle past their limit (Flow::last_active,
// Flow::idle_limit()) are erased through the translator, which closes the
// socket and releases the accounting; then the table may trim the heap. TCP
// needs none: its flows end with their connection (tcp.cpp).
template <class Flow>
class IdleSweep {
 public:
  IdleSweep(EventLoop& loop, FlowTable& table, FlowMap<Flow>& flows, Nanos interval,
            std::function<void(const FlowKey&)> erase)
      : table_(table), flows_(flows), interval_(interval), erase_(std::move(erase)),
        timer_(loop, [this] { on_timer(); }) {}

  // A flow was added: the sweep runs while there are any.
  void flow_added() {
    if (!timer_.armed()) timer_.arm_in(interval_);
  }

  void expire(Nanos now) {
    std::size_t freed = 0;
    for (auto it = flows_.begin(); it != flows_.end();) {
      const Flow& f = *it->second;
      auto next = std::next(it);
      if (now - f.last_active >= f.idle_limit()) {
        erase_(f.key);
        freed++;
      }
      it = next;
    }
    // A burst leaves a large bucket array behind; give it back too.
    if (flows_.bucket_count() > 1024 && flows_.size() < flows_.bucket_count() / 8) flows_.rehash(0);
    table_.freed(freed);
  }

 private:
  void on_timer() {
    expire(monotonic_now());
    if (!flows_.empty()) timer_.arm_in(interval_);
  }

  FlowTable& table_;
  FlowMap<Flow>& flows_;
  Nanos interval_;
  std::function<void(const FlowKey&)> erase_;
  Timer timer_;
};

}  // namespace vnet::nat
