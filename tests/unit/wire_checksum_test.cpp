#include "wire/checksum.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace vnet::wire {
namespace {

// Straightforward RFC 1071 reference: sum big-endian words, fold at the end.
std::uint16_t reference_checksum(Bytes b, std::uint32_t acc = 0) {
  std::uint64_t s = acc;
  for (std::size_t i = 0; i + 1 < b.size(); i += 2) s += (std::uint32_t{b[i]} << 8) | b[i + 1];
  if (b.size() % 2) s += std::uint32_t{b.back()} << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<std::uint16_t>(~s);
}

std::vector<std::uint8_t> random_bytes(std::mt19937& rng, std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng());
  return v;
}

TEST(WireChecksum, Rfc1071Example) {
  // RFC 1071 section 3: these bytes sum to 0xddf2.
  const std::uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(checksum_fold(checksum_add(data)), 0xddf2);
  EXPECT_EQ(internet_checksum(data), 0x220d);
}

TEST(WireChecksum, KnownIpv4Header) {
  // Widely used example header whose checksum field is 0xb861.
  std::uint8_t hdr[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                        0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_TRUE(checksum_ok(hdr));
  hdr[10] = hdr[11] = 0;
  EXPECT_EQ(internet_checksum(hdr), 0xb861);
}

TEST(WireChecksum, EmptyAndOddLengths) {
  EXPECT_EQ(internet_checksum({}), 0xffff);
  const std::uint8_t one[] = {0xab};
  EXPECT_EQ(internet_checksum(one), static_cast<std::uint16_t>(~0xab00));
}

TEST(WireChecksum, MatchesReferenceForAllSmallLengthsAndRandomData) {
  std::mt19937 rng(1071);
  for (std::size_t n = 0; n < 200; ++n) {
    auto v = random_bytes(rng, n);
    EXPECT_EQ(internet_checksum(v), reference_checksum(v)) << "len " << n;
  }
  auto big = random_bytes(rng, 9001);
  EXPECT_EQ(internet_checksum(big), reference_checksum(big));
}

TEST(WireChecksum, ChainedEvenChunksEqualWhole) {
  std::mt19937 rng(7);
  auto v = random_bytes(rng, 101);
  const Bytes all(v);
  std::uint32_t acc = checksum_add(all.first(34));
  acc = checksum_add(all.subspan(34, 40), acc);
  acc = checksum_add(all.subspan(74), acc);
  EXPECT_EQ(checksum_finish(acc), internet_checksum(all));
}

TEST(WireChecksum, AllOnesDataHandlesCarries) {
  std::vector<std::uint8_t> v(1500, 0xff);
  EXPECT_EQ(internet_checksum(v), reference_checksum(v));
}

TEST(WireChecksum, PseudoHeaderV4MatchesManualLayout) {
  const Ipv4Addr src{{10, 0, 2, 15}}, dst{{10, 0, 2, 3}};
  const std::uint8_t layout[] = {10, 0, 2, 15, 10, 0, 2, 3, 0, 17, 0x01, 0x02};
  EXPECT_EQ(checksum_fold(pseudo_header_v4(src, dst, 17, 0x0102)), checksum_fold(checksum_add(layout)));
  EXPECT_EQ(pseudo_header(IpAddr(src), IpAddr(dst), 17, 0x0102), pseudo_header_v4(src, dst, 17, 0x0102));
}

TEST(WireChecksum, PseudoHeaderV6MatchesManualLayout) {
  const auto src = *Ipv6Addr::parse("fd00::2");
  const auto dst = *Ipv6Addr::parse("fd00::1");
  std::vector<std::uint8_t> layout(src.octets.begin(), src.octets.end());
  layout.insert(layout.end(), dst.octets.begin(), dst.octets.end());
  layout.insert(layout.end(), {0x00, 0x01, 0x00, 0x02, 0, 0, 0, 58});
  EXPECT_EQ(checksum_fold(pseudo_header_v6(src, dst, 58, 0x00010002)), checksum_fold(checksum_add(layout)));
}

TEST(WireChecksum, IncrementalUpdate16MatchesRecompute) {
  std::mt19937 rng(1624);
  for (int iter = 0; iter < 200; ++iter) {
    auto v = random_bytes(rng, 40);
    v[10] = v[11] = 0;
    const std::uint16_t before = internet_checksum(v);
    const std::size_t off = 2 * (rng() % 20);
    if (off == 10) continue;
    const std::uint16_t old_v = load_be16(v, off);
    const auto new_v = static_cast<std::uint16_t>(rng());
    store_be16(v, off, new_v);
    EXPECT_EQ(checksum_update16(before, old_v, new_v), internet_checksum(v))
        << "iter " << iter;
  }
}

TEST(WireChecksum, IncrementalUpdate32And128MatchRecompute) {
  std::mt19937 rng(4242);
  for (int iter = 0; iter < 100; ++iter) {
    auto v = random_bytes(rng, 64);
    const std::uint16_t before = internet_checksum(v);
    const std::uint32_t old32 = load_be32(v, 12);
    const auto new32 = static_cast<std::uint32_t>(rng());
    store_be32(v, 12, new32);
    const std::uint16_t after32 = checksum_update32(before, old32, new32);
    EXPECT_EQ(after32, internet_checksum(v));

    std::vector<std::uint8_t> old16(v.begin() + 24, v.begin() + 40);
    auto new16 = random_bytes(rng, 16);
    std::copy(new16.begin(), new16.end(), v.begin() + 24);
    EXPECT_EQ(checksum_update(after32, old16, new16), internet_checksum(v));
  }
}

TEST(WireChecksum, VerifyDetectsSingleBitFlip) {
  std::mt19937 rng(99);
  auto v = random_bytes(rng, 32);
  v[10] = v[11] = 0;
  store_be16(v, 10, internet_checksum(v));
  ASSERT_TRUE(checksum_ok(v));
  v[5] ^= 0x04;
  EXPECT_FALSE(checksum_ok(v));
}

}  // namespace
}  // namespace vnet::wire
