// IPv4 / IPv6 addresses and an address-family-agnostic IpAddr.
//
// Representation choices:
//  - Ipv4Addr and Ipv6Addr store octets in network order (like MacAddr), so
//    they copy straight to and from the wire with no byte swapping. Use
//    to_u32()/from_u32() when host-order arithmetic is needed (masks, ranges).
//  - IpAddr always stores 16 bytes; an IPv4 address is kept IPv4-mapped
//    (::ffff:a.b.c.d, RFC 4291 2.5.5.2). Flow tables can then key on one type
//    and hash/compare 16 bytes without branching on the family.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "wire/bytes.hpp"

namespace vnet::wire {

struct Ipv4Addr {
  std::array<std::uint8_t, 4> octets{};

  static constexpr std::size_t kLen = 4;

  static Ipv4Addr from_bytes(Bytes b) {
    Ipv4Addr a;
    std::memcpy(a.octets.data(), b.data(), kLen);
    return a;
  }
  static constexpr Ipv4Addr from_u32(std::uint32_t host_order) {
    return {{static_cast<std::uint8_t>(host_order >> 24), static_cast<std::uint8_t>(host_order >> 16),
             static_cast<std::uint8_t>(host_order >> 8), static_cast<std::uint8_t>(host_order)}};
  }
  constexpr std::uint32_t to_u32() const {
    return (std::uint32_t{octets[0]} << 24) | (std::uint32_t{octets[1]} << 16) |
           (std::uint32_t{octets[2]} << 8) | std::uint32_t{octets[3]};
  }
  static constexpr Ipv4Addr unspecified() { return {}; }
  static constexpr Ipv4Addr broadcast() { return {{255, 255, 255, 255}}; }

  constexpr bool is_unspecified() const { return to_u32() == 0; }
  constexpr bool is_broadcast() const { return to_u32() == 0xffffffffu; }
  constexpr bool is_multicast() const { return (octets[0] & 0xf0) == 224; }
  constexpr bool is_loopback() const { return octets[0] == 127; }
  constexpr bool is_link_local() const { return octets[0] == 169 && octets[1] == 254; }

  std::string to_string() const;
  static std::optional<Ipv4Addr> parse(std::string_view text);

  friend constexpr bool operator==(const Ipv4Addr&, const Ipv4Addr&) = default;
  friend constexpr auto operator<=>(const Ipv4Addr&, const Ipv4Addr&) = default;
};

struct Ipv6Addr {
  std::array<std::uint8_t, 16> octets{};

  static constexpr std::size_t kLen = 16;

  static Ipv6Addr from_bytes(Bytes b) {
    Ipv6Addr a;
    std::memcpy(a.octets.data(), b.data(), kLen);
    return a;
  }
  static constexpr Ipv6Addr unspecified() { return {}; }
  static constexpr Ipv6Addr loopback() {
    Ipv6Addr a;
    a.octets[15] = 1;
    return a;
  }

  bool is_unspecified() const { return *this == Ipv6Addr{}; }
  bool is_loopback() const { return *this == loopback(); }
  bool is_multicast() const { return octets[0] == 0xff; }
  bool is_link_local() const { return octets[0] == 0xfe && (octets[1] & 0xc0) == 0x80; }
  bool is_v4_mapped() const;

  std::string to_string() const;
  static std::optional<Ipv6Addr> parse(std::string_view text);

  friend bool operator==(const Ipv6Addr&, const Ipv6Addr&) = default;
  friend auto operator<=>(const Ipv6Addr&, const Ipv6Addr&) = default;
};

class IpAddr {
 public:
  IpAddr() = default;  // "::", which is_v4() == false
  IpAddr(Ipv4Addr v4);  // NOLINT(implicit): lets APIs taking IpAddr accept either family
  IpAddr(const Ipv6Addr& v6) : addr_(v6) {}  // NOLINT(implicit)

  bool is_v4() const { return addr_.is_v4_mapped(); }
  bool is_v6() const { return !is_v4(); }
  // Only meaningful when is_v4(); returns the low 32 bits otherwise.
  Ipv4Addr v4() const { return Ipv4Addr{{addr_.octets[12], addr_.octets[13], addr_.octets[14], addr_.octets[15]}}; }
  const Ipv6Addr& v6() const { return addr_; }
  // The raw 16 bytes; for IPv4 these are the mapped form.
  Bytes bytes() const { return addr_.octets; }

  bool is_unspecified() const { return is_v4() ? v4().is_unspecified() : addr_.is_unspecified(); }

  // Dotted quad for IPv4, RFC 5952 text for IPv6.
  std::string to_string() const;
  // Accepts either family's textual form.
  static std::optional<IpAddr> parse(std::string_view text);

  friend bool operator==(const IpAddr&, const IpAddr&) = default;
  friend auto operator<=>(const IpAddr&, const IpAddr&) = default;

 private:
  Ipv6Addr addr_{};
};

struct Ipv4Cidr {
  Ipv4Addr addr{};
  std::uint8_t prefix_len = 0;  // 0..32

  constexpr std::uint32_t netmask_u32() const {
    return prefix_len == 0 ? 0u : ~std::uint32_t{0} << (32 - prefix_len);
  }
  constexpr Ipv4Addr netmask() const { return Ipv4Addr::from_u32(netmask_u32()); }
  constexpr Ipv4Addr network() const { return Ipv4Addr::from_u32(addr.to_u32() & netmask_u32()); }
  constexpr Ipv4Addr broadcast() const { return Ipv4Addr::from_u32(addr.to_u32() | ~netmask_u32()); }
  constexpr bool contains(Ipv4Addr a) const {
    return ((a.to_u32() ^ addr.to_u32()) & netmask_u32()) == 0;
  }

  std::string to_string() const;
  // "10.0.2.0/24"; a bare address means /32. Host bits are kept so that
  // "10.0.2.2/24" can describe both the gateway address and its subnet.
  static std::optional<Ipv4Cidr> parse(std::string_view text);

  friend constexpr bool operator==(const Ipv4Cidr&, const Ipv4Cidr&) = default;
};

// An IPv6 prefix, e.g. fec0::/64. Like Ipv4Cidr, host bits are kept.
struct Ipv6Cidr {
  Ipv6Addr addr{};
  std::uint8_t prefix_len = 0;  // 0..128

  bool contains(const Ipv6Addr& a) const;
  Ipv6Addr network() const;  // host bits cleared

  std::string to_string() const;
  // "fec0::/64"; a bare address means /128.
  static std::optional<Ipv6Cidr> parse(std::string_view text);

  friend bool operator==(const Ipv6Cidr&, const Ipv6Cidr&) = default;
};

}  // namespace vnet::wire

template <>
struct std::hash<vnet::wire::Ipv4Addr> {
  std::size_t operator()(const vnet::wire::Ipv4Addr& a) const noexcept {
    std::uint64_t x = a.to_u32() * 0x9E3779B97F4A7C15ull;
    return static_cast<std::size_t>(x ^ (x >> 29));
  }
};

template <>
struct std::hash<vnet::wire::Ipv6Addr> {
  std::size_t operator()(const vnet::wire::Ipv6Addr& a) const noexcept {
    std::uint64_t hi, lo;
    std::memcpy(&hi, a.octets.data(), 8);
    std::memcpy(&lo, a.octets.data() + 8, 8);
    // Two multiplies so that addresses differing only in the interface id
    // (the common case inside one /64) still spread.
    std::uint64_t x = (hi * 0x9E3779B97F4A7C15ull) ^ (lo * 0xC2B2AE3D27D4EB4Full);
    return static_cast<std::size_t>(x ^ (x >> 31));
  }
};

template <>
struct std::hash<vnet::wire::IpAddr> {
  std::size_t operator()(const vnet::wire::IpAddr& a) const noexcept {
    return std::hash<vnet::wire::Ipv6Addr>{}(a.v6());
  }
};
