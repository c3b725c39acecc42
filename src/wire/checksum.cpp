#include "wire/checksum.hpp"

#include <bit>
#include <cstring>

namespace vnet::wire {

namespace {

// One's-complement addition with end-around carry on 64-bit lanes. Because
// the one's-complement sum is byte-order independent (RFC 1071 2(B)), we add
// native-endian words and swap once at the end.
inline std::uint64_t add_carry(std::uint64_t acc, std::uint64_t v) {
  acc += v;
  return acc + (acc < v ? 1 : 0);
}

inline std::uint16_t fold64_native(std::uint64_t acc) {
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffffffu) + (acc >> 32);
  std::uint32_t a = static_cast<std::uint32_t>(acc);
  a = (a & 0xffff) + (a >> 16);
  a = (a & 0xffff) + (a >> 16);
  return static_cast<std::uint16_t>(a);
}

inline std::uint16_t native_to_be_order(std::uint16_t v) {
  if constexpr (std::endian::native == std::endian::little) {
    return static_cast<std::uint16_t>((v << 8) | (v >> 8));
  } else {
    return v;
  }
}

}  // namespace

std::uint32_t checksum_add(Bytes data, std::uint32_t acc) noexcept {
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
  std::uint64_t sum = 0;
  // Two independent lanes let the CPU overlap the carry chains.
  std::uint64_t sum2 = 0;
  while (n >= 16) {
    std::uint64_t a, b;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + 8, 8);
    sum = add_carry(sum, a);
    sum2 = add_carry(sum2, b);
    p += 16;
    n -= 16;
  }
  sum = add_carry(sum, sum2);
  if (n >= 8) {
    std::uint64_t a;
    std::memcpy(&a, p, 8);
    sum = add_carry(sum, a);
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    // Zero padding the tail in memory order pads an odd final byte on the
    // right, exactly as RFC 1071 specifies.
    std::uint64_t a = 0;
    std::memcpy(&a, p, n);
    sum = add_carry(sum, a);
  }
  const std::uint32_t folded = native_to_be_order(fold64_native(sum));
  // Caller accumulators stay far from overflow: each call adds < 2^16.
  return acc + folded;
}

std::uint32_t pseudo_header_v4(Ipv4Addr src, Ipv4Addr dst, std::uint8_t protocol,
                               std::uint16_t length) noexcept {
  std::uint32_t acc = (src.to_u32() >> 16) + (src.to_u32() & 0xffff);
  acc += (dst.to_u32() >> 16) + (dst.to_u32() & 0xffff);
  acc += protocol;
  acc += length;
  return acc;
}

std::uint32_t pseudo_header_v6(const Ipv6Addr& src, const Ipv6Addr& dst, std::uint8_t next_header,
                               std::uint32_t length) noexcept {
  std::uint32_t acc = checksum_add(src.octets);
  acc = checksum_add(dst.octets, acc);
  acc += (length >> 16) + (length & 0xffff);
  acc += next_header;
  return acc;
}

std::uint32_t pseudo_header(const IpAddr& src, const IpAddr& dst, std::uint8_t protocol,
                            std::uint32_t length) noexcept {
  if (src.is_v4()) {
    return pseudo_header_v4(src.v4(), dst.v4(), protocol, static_cast<std::uint16_t>(length));
  }
  return pseudo_header_v6(src.v6(), dst.v6(), protocol, length);
}

std::uint16_t checksum_update(std::uint16_t checksum, Bytes old_bytes, Bytes new_bytes) noexcept {
  // ~m summed as a whole equals the one's-complement negation of sum(m), so
  // the per-word formula collapses to a single pass over each region.
  std::uint32_t acc = static_cast<std::uint16_t>(~checksum);
  acc += static_cast<std::uint16_t>(~checksum_fold(checksum_add(old_bytes)));
  acc = checksum_add(new_bytes, acc);
  return checksum_finish(acc);
}

}  // namespace vnet::wire

