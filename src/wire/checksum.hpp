// Internet checksum (RFC 1071), pseudo-header sums, and incremental update
// (RFC 1624).
//
// Convention: an "accumulator" is an unfolded 32-bit one's-complement sum of
// big-endian 16-bit words, as a host-order integer. Sums of separate spans can
// be chained through the accumulator as long as every span but the last has
// even length (each chunk must start on a 16-bit boundary of the message).
// fold() reduces an accumulator to 16 bits; finish() folds and complements to
// give the value stored in a header.
#pragma once

#include <cstdint>

#include "wire/bytes.hpp"
#include "wire/ipaddr.hpp"

namespace vnet::wire {

// Adds data to acc. Processes 8 bytes per step; result is not folded.
std::uint32_t checksum_add(Bytes data, std::uint32_t acc = 0) noexcept;

constexpr std::uint16_t checksum_fold(std::uint32_t acc) noexcept {
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<std::uint16_t>(acc);
}

constexpr std::uint16_t checksum_finish(std::uint32_t acc) noexcept {
  return static_cast<std::uint16_t>(~checksum_fold(acc));
}

// The value to store in a checksum field covering exactly `data`
// (with the field itself zeroed).
inline std::uint16_t internet_checksum(Bytes data, std::uint32_t acc = 0) noexcept {
  return checksum_finish(checksum_add(data, acc));
}

// True when data (checksum field included) sums to all-ones.
inline bool checksum_ok(Bytes data, std::uint32_t acc = 0) noexcept {
  return checksum_fold(checksum_add(data, acc)) == 0xffff;
}

// Pseudo-header accumulators for TCP/UDP/ICMPv6 (RFC 793/768, RFC 8200 8.1).
std::uint32_t pseudo_header_v4(Ipv4Addr src, Ipv4Addr dst, std::uint8_t protocol,
                               std::uint16_t length) noexcept;
std::uint32_t pseudo_header_v6(const Ipv6Addr& src, const Ipv6Addr& dst, std::uint8_t next_header,
                               std::uint32_t length) noexcept;
// Dispatches on the family of src; src and dst must be the same family.
std::uint32_t pseudo_header(const IpAddr& src, const IpAddr& dst, std::uint8_t protocol,
                            std::uint32_t length) noexcept;

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). Returns the new checksum field
// value after a 16-bit word at an even offset changed from old_v to new_v.
constexpr std::uint16_t checksum_update16(std::uint16_t checksum, std::uint16_t old_v,
                                          std::uint16_t new_v) noexcept {
  std::uint32_t acc = static_cast<std::uint16_t>(~checksum);
  acc += static_cast<std::uint16_t>(~old_v);
  acc += new_v;
  return checksum_finish(acc);
}

// Same for a 32-bit field (two adjacent words), e.g. an IPv4 address.
constexpr std::uint16_t checksum_update32(std::uint16_t checksum, std::uint32_t old_v,
                                          std::uint32_t new_v) noexcept {
  checksum = checksum_update16(checksum, static_cast<std::uint16_t>(old_v >> 16),
                               static_cast<std::uint16_t>(new_v >> 16));
  return checksum_update16(checksum, static_cast<std::uint16_t>(old_v),
                           static_cast<std::uint16_t>(new_v));
}

// Same for an arbitrary even-length region (e.g. an IPv6 address) that
// changed from old_bytes to new_bytes; both spans must have equal length.
std::uint16_t checksum_update(std::uint16_t checksum, Bytes old_bytes, Bytes new_bytes) noexcept;

}  // namespace vnet::wire
