// A token bucket kept as a virtual finish time: the bytes sent so far at the
// rate would be on the wire until `finish`, and a frame may leave once that
// time, less the burst the bucket allows early, has come. Used by a port's
// rate impairment and by a bandwidth group's lanes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "core/event_loop.hpp"

namespace vnet {

class TokenBucket {
 public:
  static Nanos wire_time(std::uint64_t rate_bps, std::size_t bytes) {
    return static_cast<Nanos>(static_cast<double>(bytes) * 8.0 * kSeconds / static_cast<double>(rate_bps));
  }

  // When a frame of `bytes` offered at `now` may leave (burst 0: one
  // 1514-byte frame may leave early).
  Nanos departure(std::uint64_t rate_bps, std::uint64_t burst_bytes, std::size_t bytes, Nanos now) const {
    return finished_after(rate_bps, burst_bytes, bytes, now) - burst_time(rate_bps, burst_bytes);
  }
  // Takes `bytes` from the bucket at `now`; returns when they may leave.
  Nanos charge(std::uint64_t rate_bps, std::uint64_t burst_bytes, std::size_t bytes, Nanos now) {
    finish_ = finished_after(rate_bps, burst_bytes, bytes, now);
    return finish_ - burst_time(rate_bps, burst_bytes);
  }
  // Gives back what a frame took but never used on the wire (it was dropped).
  void refund(std::uint64_t rate_bps, std::size_t bytes) { finish_ -= wire_time(rate_bps, bytes); }

 private:
  Nanos finished_after(std::uint64_t rate_bps, std::uint64_t burst_bytes, std::size_t bytes, Nanos now) const {
    return std::max(finish_, now - burst_time(rate_bps, burst_bytes)) + wire_time(rate_bps, bytes);
  }
  static Nanos burst_time(std::uint64_t rate_bps, std::uint64_t burst_bytes) {
    return wire_time(rate_bps, burst_bytes ? burst_bytes : 1514);
  }
  Nanos finish_ = 0;
};

}  // namespace vnet
