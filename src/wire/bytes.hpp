// Bounds-checked big-endian field access over byte spans.
//
// Every wire view reads guest or network input through these helpers; the
// callers check the length once in parse(), so the accessors here assert in
// debug builds only and never read past the span they were given.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>

namespace vnet::wire {

using Bytes = std::span<const std::uint8_t>;
using MutBytes = std::span<std::uint8_t>;

inline std::uint16_t load_be16(Bytes b, std::size_t off) {
  assert(off + 2 <= b.size());
  return static_cast<std::uint16_t>((b[off] << 8) | b[off + 1]);
}

inline std::uint32_t load_be32(Bytes b, std::size_t off) {
  assert(off + 4 <= b.size());
  return (std::uint32_t{b[off]} << 24) | (std::uint32_t{b[off + 1]} << 16) |
         (std::uint32_t{b[off + 2]} << 8) | std::uint32_t{b[off + 3]};
}

inline void store_be16(MutBytes b, std::size_t off, std::uint16_t v) {
  assert(off + 2 <= b.size());
  b[off] = static_cast<std::uint8_t>(v >> 8);
  b[off + 1] = static_cast<std::uint8_t>(v);
}

inline void store_be32(MutBytes b, std::size_t off, std::uint32_t v) {
  assert(off + 4 <= b.size());
  b[off] = static_cast<std::uint8_t>(v >> 24);
  b[off + 1] = static_cast<std::uint8_t>(v >> 16);
  b[off + 2] = static_cast<std::uint8_t>(v >> 8);
  b[off + 3] = static_cast<std::uint8_t>(v);
}

}  // namespace vnet::wire
