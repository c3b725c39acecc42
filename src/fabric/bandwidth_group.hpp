// Bandwidth groups, as VirtualBox's `bandwidthctl`: several ports share one
// rate limit. Each member port's impairment stage (fabric/impairment) takes
// its departure times from the group's token bucket for its direction, so
// the members' traffic together never exceeds the rate, whichever of them
// sends. Frames still wait in their own port's queue, in arrival order.
#pragma once

#include <cstdint>
#include <string>

#include "core/event_loop.hpp"

namespace vnet {

struct BandwidthGroup {
  std::string name;
  std::uint64_t rate_bps = 0;     // > 0
  std::uint64_t burst_bytes = 0;  // 0: one MTU-sized frame
  // The bucket's virtual finish time per direction (Direction::In, Out):
  // what the members have used of the rate so far.
  Nanos finish[2] = {0, 0};
};

}  // namespace vnet
