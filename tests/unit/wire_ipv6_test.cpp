#include "wire/ipv6.hpp"

#include <algorithm>

#include <gtest/gtest.h>

#include <vector>

#include "wire_samples.hpp"

namespace vnet::wire {
namespace {

std::vector<std::uint8_t> sample() {
  return {std::begin(samples::kIpv6UdpPacket), std::end(samples::kIpv6UdpPacket)};
}

TEST(WireIpv6, ParsesKnownPacket) {
  const auto b = sample();
  auto p = Ipv6Packet::parse(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->version(), 6);
  EXPECT_EQ(p->payload_len(), 13);
  EXPECT_EQ(p->next_header(), IpProtocol::Udp);
  EXPECT_EQ(p->hop_limit(), 255);
  EXPECT_EQ(p->src(), *Ipv6Addr::parse("fd00::2"));
  EXPECT_EQ(p->dst(), *Ipv6Addr::parse("fd00::1"));
  EXPECT_EQ(p->payload().size(), 13u);
}

TEST(WireIpv6, RoundTrip) {
  Ipv6Repr r{*Ipv6Addr::parse("2001:db8::1"), *Ipv6Addr::parse("fe80::1"), IpProtocol::Icmpv6, 1, 8, 0xa5,
             0xabcde};
  std::vector<std::uint8_t> buf(r.buffer_len());
  ASSERT_EQ(r.emit(buf), 40u);
  auto p = Ipv6Packet::parse(buf);
  ASSERT_TRUE(p);
  EXPECT_EQ(Ipv6Repr::parse(*p), r);
}

TEST(WireIpv6, TrimsToPayloadLength) {
  auto b = sample();
  b.resize(b.size() + 7);
  auto p = Ipv6Packet::parse(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->bytes().size(), 53u);
}

TEST(WireIpv6, TruncatedBelowMinimum) {
  auto b = sample();
  for (std::size_t n = 0; n < Ipv6Packet::kHeaderLen; ++n) {
    auto p = Ipv6Packet::parse(Bytes(b).first(n));
    ASSERT_FALSE(p) << n;
    EXPECT_EQ(p.error(), ParseError::Truncated) << n;
  }
}

TEST(WireIpv6, BadVersion) {
  auto b = sample();
  b[0] = 0x40;
  EXPECT_EQ(Ipv6Packet::parse(b).error(), ParseError::BadVersion);
}

TEST(WireIpv6, PayloadLengthBeyondBuffer) {
  auto b = sample();
  b[5] = 14;
  EXPECT_EQ(Ipv6Packet::parse(b).error(), ParseError::Truncated);
}

TEST(WireIpv6, JumbogramUnsupported) {
  auto b = sample();
  b[4] = b[5] = 0;
  b[6] = 0;  // hop-by-hop
  EXPECT_EQ(Ipv6Packet::parse(b).error(), ParseError::Unsupported);
}

TEST(WireIpv6, Ipv4MappedAddressesUnsupported) {
  // Found by fuzz_ethernet: an IPv6 UDP packet from ::ffff:0.0.64.0 was
  // checksummed as IPv4 after the address reached IpAddr.
  for (std::size_t offset : {8u, 24u}) {
    auto b = sample();
    std::fill(b.begin() + offset, b.begin() + offset + 16, 0);
    b[offset + 10] = b[offset + 11] = 0xff;
    b[offset + 14] = 0x40;
    EXPECT_EQ(Ipv6Packet::parse(b).error(), ParseError::Unsupported) << "address at " << offset;
  }
}

TEST(WireIpv6, MutSetters) {
  auto b = sample();
  auto m = Ipv6PacketMut::parse(b);
  ASSERT_TRUE(m);
  auto p = *m;
  p.set_src(*Ipv6Addr::parse("2001:db8::5"));
  p.set_dst(*Ipv6Addr::parse("2001:db8::6"));
  p.set_hop_limit(3);
  auto again = Ipv6Packet::parse(b);
  EXPECT_EQ(again->src().to_string(), "2001:db8::5");
  EXPECT_EQ(again->dst().to_string(), "2001:db8::6");
  EXPECT_EQ(again->hop_limit(), 3);
}

}  // namespace
}  // namespace vnet::wire
