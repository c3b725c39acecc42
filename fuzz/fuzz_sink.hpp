// Keeps fuzzed accessor results observable so the optimizer cannot drop the
// reads that the sanitizers are meant to check.
#pragma once

#include <cstdint>

namespace vnet::fuzz {

inline volatile std::uint64_t g_sink = 0;

template <class T>
inline void sink(const T& v) {
  g_sink = g_sink + static_cast<std::uint64_t>(v);
}

// Crash loudly (libFuzzer reports it) when an invariant does not hold.
inline void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace vnet::fuzz
