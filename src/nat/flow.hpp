// Flows of the NAT: the key every translator uses, in family-agnostic
// addresses (IPv4 held IPv4-mapped, see wire/ipaddr.hpp), so IPv6 flows
// share the tables with no second copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "wire/ipaddr.hpp"

namespace vnet::nat {

// A translated flow as the guest sees it. For ICMP echo, guest_port is the
// echo identifier and remote_port is 0.
struct FlowKey {
  wire::IpAddr guest;
  std::uint16_t guest_port = 0;
  wire::IpAddr remote;  // as the guest addresses it
  std::uint16_t remote_port = 0;
  friend bool operator==(const FlowKey&, const FlowKey&) = default;
};

struct FlowKeyHash {
  std::size_t operator()(const FlowKey& k) const noexcept {
    std::uint64_t w[4];
    std::memcpy(w, k.guest.bytes().data(), 16);
    std::memcpy(w + 2, k.remote.bytes().data(), 16);
    std::uint64_t x = (w[0] * 0x9E3779B97F4A7C15ull) ^ (w[1] * 0xC2B2AE3D27D4EB4Full) ^
                      (w[2] * 0x165667B19E3779F9ull) ^ (w[3] * 0x27D4EB2F165667C5ull);
    x ^= (std::uint64_t{k.guest_port} << 16 | k.remote_port) * 0xC2B2AE3D27D4EB4Full;
    x *= 0x9E3779B97F4A7C15ull;
    return static_cast<std::size_t>(x ^ (x >> 29));
  }
};

}  // namespace vnet::nat
