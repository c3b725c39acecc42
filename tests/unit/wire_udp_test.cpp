#include "wire/udp.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/ipv6.hpp"
#include "wire_samples.hpp"

namespace vnet::wire {
namespace {

const IpAddr kGuest4 = Ipv4Addr{{10, 0, 2, 15}};
const IpAddr kDns4 = Ipv4Addr{{10, 0, 2, 3}};
const IpAddr kSrc6 = *Ipv6Addr::parse("fd00::2");
const IpAddr kDst6 = *Ipv6Addr::parse("fd00::1");

std::vector<std::uint8_t> dns_udp_bytes() {
  auto udp = Bytes(samples::kUdpDnsFrame).subspan(EthernetFrame::kHeaderLen + Ipv4Packet::kMinHeaderLen);
  return {udp.begin(), udp.end()};
}

TEST(WireUdp, ParsesKnownIpv4Datagram) {
  auto eth = EthernetFrame::parse(samples::kUdpDnsFrame);
  ASSERT_TRUE(eth);
  auto ip = Ipv4Packet::parse(eth->payload());
  ASSERT_TRUE(ip);
  auto u = UdpPacket::parse(ip->payload());
  ASSERT_TRUE(u);
  EXPECT_EQ(u->src_port(), 40000);
  EXPECT_EQ(u->dst_port(), 53);
  EXPECT_EQ(u->length(), 37);
  EXPECT_EQ(u->checksum(), 0xcfe1);
  EXPECT_TRUE(u->verify_checksum(ip->src(), ip->dst()));
  EXPECT_EQ(u->payload().size(), 29u);
  auto r = UdpRepr::parse(*u, ip->src(), ip->dst());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->payload_len, 29);
}

TEST(WireUdp, ParsesKnownIpv6Datagram) {
  auto ip = Ipv6Packet::parse(samples::kIpv6UdpPacket);
  ASSERT_TRUE(ip);
  auto u = UdpPacket::parse(ip->payload());
  ASSERT_TRUE(u);
  EXPECT_EQ(u->src_port(), 5353);
  EXPECT_TRUE(u->verify_checksum(ip->src(), ip->dst()));
  EXPECT_EQ(std::memcmp(u->payload().data(), "hello", 5), 0);
}

TEST(WireUdp, RoundTripV4AndV6) {
  for (const auto& [src, dst] : {std::pair{kGuest4, kDns4}, std::pair{kSrc6, kDst6}}) {
    UdpRepr r{1234, 53, 11};
    std::vector<std::uint8_t> buf(r.buffer_len());
    std::memcpy(buf.data() + 8, "hello world", 11);
    ASSERT_EQ(r.emit(buf, src, dst), 8u);
    auto u = UdpPacket::parse(buf);
    ASSERT_TRUE(u);
    EXPECT_NE(u->checksum(), 0);
    auto back = UdpRepr::parse(*u, src, dst);
    ASSERT_TRUE(back) << src.to_string();
    EXPECT_EQ(*back, r);
  }
}

TEST(WireUdp, EmitRejectsShortBuffer) {
  std::vector<std::uint8_t> buf(10);
  EXPECT_EQ((UdpRepr{1, 2, 3}.emit(buf, kGuest4, kDns4)), 0u);
}

TEST(WireUdp, TruncatedBelowMinimum) {
  auto b = dns_udp_bytes();
  for (std::size_t n = 0; n < UdpPacket::kHeaderLen; ++n) {
    auto u = UdpPacket::parse(Bytes(b).first(n));
    ASSERT_FALSE(u) << n;
    EXPECT_EQ(u.error(), ParseError::Truncated) << n;
  }
}

TEST(WireUdp, LengthBelowEight) {
  auto b = dns_udp_bytes();
  for (std::uint16_t len = 0; len < 8; ++len) {
    store_be16(b, 4, len);
    auto u = UdpPacket::parse(b);
    ASSERT_FALSE(u) << len;
    EXPECT_EQ(u.error(), ParseError::BadLength) << len;
  }
}

TEST(WireUdp, LengthBeyondBuffer) {
  auto b = dns_udp_bytes();
  store_be16(b, 4, static_cast<std::uint16_t>(b.size() + 1));
  EXPECT_EQ(UdpPacket::parse(b).error(), ParseError::Truncated);
}

TEST(WireUdp, BadChecksumDetected) {
  auto b = dns_udp_bytes();
  b.back() ^= 1;
  auto u = UdpPacket::parse(b);
  ASSERT_TRUE(u);
  EXPECT_FALSE(u->verify_checksum(kGuest4, kDns4));
  EXPECT_EQ(UdpRepr::parse(*u, kGuest4, kDns4).error(), ParseError::BadChecksum);
  // Wrong pseudo-header (another destination) must also fail.
  auto good = dns_udp_bytes();
  EXPECT_FALSE(UdpPacket::parse(good)->verify_checksum(kGuest4, IpAddr(Ipv4Addr{{10, 0, 2, 4}})));
}

TEST(WireUdp, ZeroChecksumMeansNoneOnlyForIpv4) {
  auto b = dns_udp_bytes();
  store_be16(b, 6, 0);
  auto u = UdpPacket::parse(b);
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->verify_checksum(kGuest4, kDns4));
  EXPECT_FALSE(u->verify_checksum(kSrc6, kDst6));
}

TEST(WireUdp, ComputedZeroIsSentAsAllOnes) {
  // Choose the source port so that the checksum would come out as zero.
  UdpRepr r{0, 53, 0};
  std::vector<std::uint8_t> buf(8);
  ASSERT_EQ(r.emit(buf, kGuest4, kDns4), 8u);
  const std::uint16_t c = load_be16(buf, 6);
  r.src_port = c;  // adding the old checksum value to the sum makes it 0xffff
  ASSERT_EQ(r.emit(buf, kGuest4, kDns4), 8u);
  EXPECT_EQ(load_be16(buf, 6), 0xffff);
  EXPECT_TRUE(UdpPacket::parse(buf)->verify_checksum(kGuest4, kDns4));
}

TEST(WireUdp, NatRewriteKeepsChecksumValid) {
  std::mt19937 rng(768);
  for (int i = 0; i < 50; ++i) {
    auto b = dns_udp_bytes();
    auto m = UdpPacketMut::parse(b);
    ASSERT_TRUE(m);
    auto u = *m;
    const IpAddr new_src = Ipv4Addr::from_u32(static_cast<std::uint32_t>(rng()));
    u.set_src_port(static_cast<std::uint16_t>(rng()));
    u.set_dst_port(static_cast<std::uint16_t>(rng()));
    u.adjust_for_address_change(kGuest4, new_src);
    EXPECT_TRUE(u.verify_checksum(new_src, kDns4)) << i;
  }
}

TEST(WireUdp, NatRewriteV6KeepsChecksumValid) {
  std::vector<std::uint8_t> b(std::begin(samples::kIpv6UdpPacket) + 40, std::end(samples::kIpv6UdpPacket));
  auto u = *UdpPacketMut::parse(b);
  const IpAddr new_dst = *Ipv6Addr::parse("2001:db8:1::99");
  u.set_dst_port(8053);
  u.adjust_for_address_change(kDst6, new_dst);
  EXPECT_TRUE(u.verify_checksum(kSrc6, new_dst));
}

TEST(WireUdp, NatRewriteLeavesAbsentChecksumAbsent) {
  auto b = dns_udp_bytes();
  store_be16(b, 6, 0);
  auto u = *UdpPacketMut::parse(b);
  u.set_src_port(1);
  u.adjust_for_address_change(kGuest4, IpAddr(Ipv4Addr{{1, 2, 3, 4}}));
  EXPECT_EQ(u.checksum(), 0);
  u.fill_checksum(kGuest4, kDns4);
  EXPECT_TRUE(u.verify_checksum(kGuest4, kDns4));
  EXPECT_NE(u.checksum(), 0);
}

}  // namespace
}  // namespace vnet::wire
