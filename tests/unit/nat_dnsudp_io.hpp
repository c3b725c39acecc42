// Test scaffolding for the NAT translators (dns, udp, icmp): a GuestIo that
// records what would be sent to guests, and a bounded run of the real loop.
#pragma once

#include <cstring>
#include <functional>
#include <vector>

#include "core/event_loop.hpp"
#include "nat/guest_io.hpp"
#include "wire/ipv4.hpp"
#include "wire/udp.hpp"

namespace vnet::nat::testing {

struct SentPacket {
  wire::Ipv4Addr src, dst;
  wire::IpProtocol proto;
  std::vector<std::uint8_t> l4;
};

class RecordingGuestIo : public GuestIo {
 public:
  explicit RecordingGuestIo(EventLoop& loop, NatConfig cfg = {})
      : loop_(loop), config_(std::move(cfg)), buf_(config_.mtu - wire::Ipv4Packet::kMinHeaderLen) {}

  EventLoop& loop() override { return loop_; }
  const NatConfig& config() const override { return config_; }
  NatCounters& counters() override { return counters_; }
  wire::MutBytes l4_buffer() override { return buf_; }
  bool send_l4_in_place(wire::Ipv4Addr src, wire::Ipv4Addr dst, wire::IpProtocol proto, std::size_t len) override {
    if (len > buf_.size()) return false;
    sent.push_back({src, dst, proto, {buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(len)}});
    return true;
  }
  bool send_udp(wire::Ipv4Addr src, std::uint16_t sport, wire::Ipv4Addr dst, std::uint16_t dport,
                wire::Bytes payload) override {
    if (payload.size() + 8 > buf_.size()) return false;
    std::memmove(buf_.data() + 8, payload.data(), payload.size());
    wire::UdpRepr udp{sport, dport, static_cast<std::uint16_t>(payload.size())};
    udp.emit(wire::MutBytes(buf_).first(8 + payload.size()), wire::IpAddr(src), wire::IpAddr(dst));
    return send_l4_in_place(src, dst, wire::IpProtocol::Udp, 8 + payload.size());
  }
  const wire::MacAddr* guest_mac(wire::Ipv4Addr) const override { return &mac_; }

  NatConfig& mutable_config() { return config_; }
  std::vector<SentPacket> sent;

 private:
  EventLoop& loop_;
  NatConfig config_;
  NatCounters counters_;
  std::vector<std::uint8_t> buf_;
  wire::MacAddr mac_{{0x52, 0x54, 0, 0x12, 0x34, 0x56}};
};

// Runs the loop until pred() holds or `timeout` passes; returns whether it
// held (pred is evaluated once per poll, so it may consume what it checks).
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

// Runs the loop for a fixed time (to show that nothing happens).
inline void run_for(EventLoop& loop, Nanos d) {
  run_until(loop, [] { return false; }, d);
}

}  // namespace vnet::nat::testing
