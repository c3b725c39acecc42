// The key of a translated TCP or UDP flow, as the guest sees it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "wire/ipaddr.hpp"

namespace vnet::nat {

struct FlowKey {
  wire::Ipv4Addr guest;
  std::uint16_t guest_port;
  wire::Ipv4Addr remote;  // as the guest addresses it
  std::uint16_t remote_port;
  friend bool operator==(const FlowKey&, const FlowKey&) = default;
};

struct FlowKeyHash {
  std::size_t operator()(const FlowKey& k) const noexcept {
    std::uint64_t x = (std::uint64_t{k.guest.to_u32()} << 32) | k.remote.to_u32();
    x ^= (std::uint64_t{k.guest_port} << 16 | k.remote_port) * 0xC2B2AE3D27D4EB4Full;
    x *= 0x9E3779B97F4A7C15ull;
    return static_cast<std::size_t>(x ^ (x >> 29));
  }
};

}  // namespace vnet::nat
