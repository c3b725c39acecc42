// Ethernet (EUI-48) addresses.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "wire/bytes.hpp"

namespace vnet::wire {

struct MacAddr {
  std::array<std::uint8_t, 6> octets{};

  static MacAddr from_bytes(Bytes b) {
    MacAddr m;
    std::memcpy(m.octets.data(), b.data(), 6);
    return m;
  }
  static constexpr MacAddr broadcast() { return {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }

  // Group bit: broadcast and multicast frames are flooded, never learned.
  bool is_multicast() const { return (octets[0] & 0x01) != 0; }
  bool is_broadcast() const { return *this == broadcast(); }
  bool is_zero() const { return *this == MacAddr{}; }

  std::uint64_t as_u64() const {
    std::uint64_t v = 0;
    for (auto o : octets) v = (v << 8) | o;
    return v;
  }
  std::string to_string() const;
  // Accepts "aa:bb:cc:dd:ee:ff" or with '-' separators.
  static std::optional<MacAddr> parse(std::string_view text);

  friend bool operator==(const MacAddr&, const MacAddr&) = default;
};

}  // namespace vnet::wire

template <>
struct std::hash<vnet::wire::MacAddr> {
  std::size_t operator()(const vnet::wire::MacAddr& m) const noexcept {
    // Mix so that sequential MACs (QEMU's 52:54:00:12:34:5x) spread over buckets.
    std::uint64_t x = m.as_u64() * 0x9E3779B97F4A7C15ull;
    return static_cast<std::size_t>(x ^ (x >> 29));
  }
};
