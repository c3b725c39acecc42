// The one fake guest side of the NAT for unit tests and fuzz targets: a
// GuestIo that records every packet the NAT sends toward a guest, over a
// real EventLoop (timers and host sockets behave as in the engine).
//
// What it models from the gateway: l4_buffer() is sized like the gateway's
// (MTU minus the IPv4 header), send_udp() builds the UDP header in place and
// goes through send_l4_in_place(), and a guest whose MAC is unknown cannot
// be sent to (send_l4_in_place returns false and counts drop_unknown_guest).
// It does no policy and builds no Ethernet or IP header.
#pragma once

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/event_loop.hpp"
#include "nat/guest_io.hpp"
#include "wire/ipv4.hpp"
#include "wire/udp.hpp"

namespace vnet::nat::testing {

// One packet the NAT sent toward a guest. For UDP and TCP the ports are
// filled in, and for UDP `payload` is the datagram's data.
struct SentPacket {
  wire::IpAddr src, dst;
  wire::IpProtocol proto{};
  std::vector<std::uint8_t> l4;
  std::uint16_t sport = 0, dport = 0;
  std::vector<std::uint8_t> payload;
};

class FakeGuestIo : public GuestIo {
 public:
  explicit FakeGuestIo(NatConfig c = {})
      : cfg(std::move(c)), owned_(std::make_unique<EventLoop>()), loop_(owned_.get()), flows_(*this) {}
  // Shares a loop the test owns (several translators on one loop).
  explicit FakeGuestIo(EventLoop& loop, NatConfig c = {}) : cfg(std::move(c)), loop_(&loop), flows_(*this) {}

  // GuestIo
  EventLoop& loop() override { return *loop_; }
  const NatConfig& config() const override { return cfg; }
  NatCounters& counters() override { return ctr; }
  wire::MutBytes l4_buffer() override {
    const std::size_t want =
        l4_room ? l4_room : std::max<std::size_t>(cfg.mtu, 576) - wire::Ipv4Packet::kMinHeaderLen;
    if (buf_.size() != want) buf_.resize(want);
    return {buf_.data(), buf_.size()};
  }
  bool send_l4_in_place(wire::IpAddr src, wire::IpAddr dst, wire::IpProtocol proto, std::size_t len) override {
    if (!mac_known) {
      ctr.drop_unknown_guest++;
      return false;
    }
    if (len > buf_.size()) return false;
    sends++;
    if (!record && !on_sent) return true;
    SentPacket p;
    p.src = src;
    p.dst = dst;
    p.proto = proto;
    p.l4.assign(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(len));
    if ((proto == wire::IpProtocol::Udp || proto == wire::IpProtocol::Tcp) && len >= 4) {
      p.sport = static_cast<std::uint16_t>(buf_[0] << 8 | buf_[1]);
      p.dport = static_cast<std::uint16_t>(buf_[2] << 8 | buf_[3]);
    }
    if (proto == wire::IpProtocol::Udp && len >= wire::UdpPacket::kHeaderLen)
      p.payload.assign(buf_.begin() + wire::UdpPacket::kHeaderLen, buf_.begin() + static_cast<std::ptrdiff_t>(len));
    if (on_sent) on_sent(p);
    if (record) sent.push_back(std::move(p));
    return true;
  }
  bool send_udp(wire::IpAddr src, std::uint16_t sport, wire::IpAddr dst, std::uint16_t dport,
                wire::Bytes payload) override {
    wire::MutBytes l4 = l4_buffer();
    if (payload.size() + wire::UdpPacket::kHeaderLen > l4.size()) return false;
    std::memmove(l4.data() + wire::UdpPacket::kHeaderLen, payload.data(), payload.size());
    wire::UdpRepr udp{sport, dport, static_cast<std::uint16_t>(payload.size())};
    udp.emit(l4.first(wire::UdpPacket::kHeaderLen + payload.size()), src, dst);
    return send_l4_in_place(src, dst, wire::IpProtocol::Udp, wire::UdpPacket::kHeaderLen + payload.size());
  }
  const wire::MacAddr* guest_mac(wire::IpAddr guest) const override {
    if (!mac_known) return nullptr;
    if (auto it = macs.find(guest); it != macs.end()) return &it->second;
    return default_mac ? &*default_mac : nullptr;
  }
  FlowTable& flows() override { return flows_; }

  // Runs the loop for a fixed time (to show that nothing happens, or to let
  // timers fire).
  void run_for(Nanos d) {
    Timer stop(*loop_, [this] { loop_->stop(); });
    stop.arm_in(d);
    loop_->run();
  }
  // Runs the loop until pred() holds or `timeout` passes; returns whether it
  // held (pred is evaluated every ~2 ms).
  bool run_until(const std::function<bool()>& pred, Nanos timeout = 3 * kSeconds) {
    const Nanos end = monotonic_now() + timeout;
    while (!pred()) {
      if (monotonic_now() > end) return false;
      run_for(2 * kMillis);
    }
    return true;
  }

  NatConfig cfg;
  NatCounters ctr;
  std::vector<SentPacket> sent;
  std::size_t l4_room = 0;                           // l4_buffer() size; 0: as the gateway's
  std::size_t sends = 0;                             // packets accepted, recorded or not
  bool record = true;                                // keep each packet in `sent`
  std::function<void(const SentPacket&)> on_sent;    // a check run on each packet
  bool mac_known = true;                             // false: no guest is reachable
  std::unordered_map<wire::IpAddr, wire::MacAddr> macs;  // per-address MACs, looked up first
  std::optional<wire::MacAddr> default_mac = wire::MacAddr{{0x52, 0x54, 0, 0x12, 0x34, 0x56}};

 private:
  std::unique_ptr<EventLoop> owned_;
  EventLoop* loop_;
  FlowTable flows_;
  std::vector<std::uint8_t> buf_;
};

// The loop helpers for tests that own their loop.
inline bool run_until(EventLoop& loop, const std::function<bool()>& pred, Nanos timeout) {
  const Nanos end = monotonic_now() + timeout;
  Timer* self = nullptr;
  bool done = false;
  Timer poll(loop, [&] {
    done = pred();
    if (done || monotonic_now() >= end) {
      loop.stop();
    } else {
      self->arm_in(2 * kMillis);
    }
  });
  self = &poll;
  poll.arm_in(1 * kMillis);
  loop.run();
  return done;
}

inline void run_for(EventLoop& loop, Nanos d) {
  run_until(loop, [] { return false; }, d);
}

}  // namespace vnet::nat::testing
