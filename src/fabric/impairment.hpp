// Link impairments for one direction of one port: what netem and VirtualBox's
// bandwidth groups provide, done in user space because tests and users cannot
// rely on the kernel's netem.
//
// Order of effects, per frame: loss, duplication, then queueing. A frame is
// queued when a delay or rate is set: its departure time is
//   max(arrival + delay + jitter, departure of the previous frame)
// (FIFO, so jitter never reorders by itself, as with netem's rate mode), and
// for a rate the token bucket "virtual finish time" F moves on by len/rate
// with up to `burst` bytes allowed early. In a bandwidth group, a frame that
// is due waits further for its turn on the group's shared rate
// (fabric/bandwidth_group). Reordering sends the frame at once,
// ahead of those already waiting (netem's semantics); with no delay set it
// holds the frame back behind the next one instead. The queue is bounded in
// bytes; frames that do not fit are dropped and counted.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "core/event_loop.hpp"
#include "core/frame_queue.hpp"
#include "fabric/bandwidth_group.hpp"
#include "fabric/counters.hpp"
#include "fabric/token_bucket.hpp"
#include "wire/bytes.hpp"

namespace vnet {

struct ImpairmentParams {
  std::uint64_t rate_bps = 0;      // 0: unlimited
  std::uint64_t burst_bytes = 0;   // 0: one MTU-sized frame
  Nanos delay = 0;
  Nanos jitter = 0;
  double loss = 0;                 // probabilities in [0, 1]
  double duplicate = 0;
  double reorder = 0;
  std::size_t queue_bytes = 1 << 20;

  bool active() const { return rate_bps || delay || jitter || loss > 0 || duplicate > 0 || reorder > 0; }
  std::string describe() const;
};

// "10mbit", "1gbit", "500kbit", "1000000" (bit/s); "10mbps" means bytes.
std::optional<std::uint64_t> parse_rate(std::string_view text);
// "25ms", "1s", "500us", "0".
std::optional<Nanos> parse_duration(std::string_view text);
// "1%", "0.5%", "0.01".
std::optional<double> parse_probability(std::string_view text);
// "64k", "1m", "1500".
std::optional<std::uint64_t> parse_size(std::string_view text);

class Impairment final : public BandwidthGroupMember {
 public:
  using Sink = std::function<void(wire::Bytes)>;

  // `group`, if any, is a bandwidth group whose bucket `direction` (0: in,
  // 1: out) this stage shares with the group's other members.
  Impairment(EventLoop& loop, const ImpairmentParams& params, PortCounters& counters, Sink sink,
             std::uint64_t seed, std::shared_ptr<BandwidthGroup> group = nullptr, int direction = 0);
  Impairment(const Impairment&) = delete;
  Impairment& operator=(const Impairment&) = delete;
  ~Impairment();

  void process(wire::Bytes frame);
  const ImpairmentParams& params() const { return params_; }
  std::size_t queued_frames() const { return queue_.frames(); }
  // Bytes the delay/rate queue can still take (records included).
  std::size_t queue_room() const { return queue_.capacity() - queue_.bytes_used(); }

 private:
  bool chance(double p) { return p > 0 && uniform_(rng_) < p; }
  bool queued_stage() const { return params_.delay || params_.jitter || params_.rate_bps || group_; }
  void enqueue(wire::Bytes frame);
  void release_due();
  void release_held();
  std::size_t due_frame_bytes() const override;
  Sent send_due_frame(bool held) override;

  EventLoop& loop_;
  ImpairmentParams params_;
  PortCounters& counters_;
  Sink sink_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> uniform_{0.0, 1.0};
  FrameQueue queue_;
  Timer timer_;
  Nanos last_departure_ = 0;
  TokenBucket rate_bucket_;
  FrameQueue held_;  // reorder without delay: one frame waits for the next
  Timer held_timer_;
  std::shared_ptr<BandwidthGroup> group_;
  BandwidthLane* lane_ = nullptr;  // group_'s lane for this direction
};

}  // namespace vnet
