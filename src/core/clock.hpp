// Monotonic time in nanoseconds: the one clock for timers, aging and shaping.
#pragma once

#include <cstdint>
#include <ctime>

namespace vnet {

using Nanos = std::int64_t;
constexpr Nanos kMicros = 1000;
constexpr Nanos kMillis = 1000 * kMicros;
constexpr Nanos kSeconds = 1000 * kMillis;

inline Nanos monotonic_now() {
  std::timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return Nanos{ts.tv_sec} * kSeconds + ts.tv_nsec;
}

}  // namespace vnet
