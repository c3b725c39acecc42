#include "wire/arp.hpp"

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "wire/ethernet.hpp"
#include "wire_samples.hpp"

namespace vnet::wire {
namespace {

const MacAddr kGuest{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};

std::vector<std::uint8_t> arp_bytes() {
  Bytes frame(samples::kArpRequestFrame);
  auto payload = frame.subspan(EthernetFrame::kHeaderLen);
  return {payload.begin(), payload.end()};
}

TEST(WireArp, ParsesKnownRequestInPaddedFrame) {
  auto eth = EthernetFrame::parse(samples::kArpRequestFrame);
  ASSERT_TRUE(eth);
  EXPECT_EQ(eth->ethertype(), EtherType::Arp);
  EXPECT_TRUE(eth->dst().is_broadcast());

  auto p = ArpPacket::parse(eth->payload());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->bytes().size(), ArpPacket::kLen);  // padding excluded
  auto r = ArpRepr::parse(*p);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->op, ArpOp::Request);
  EXPECT_EQ(r->sender_mac, kGuest);
  EXPECT_EQ(r->sender_ip, (Ipv4Addr{{10, 0, 2, 15}}));
  EXPECT_TRUE(r->target_mac.is_zero());
  EXPECT_EQ(r->target_ip, (Ipv4Addr{{10, 0, 2, 2}}));
}

TEST(WireArp, RoundTripReply) {
  ArpRepr r{ArpOp::Reply, MacAddr{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}}, Ipv4Addr{{10, 0, 2, 2}}, kGuest,
            Ipv4Addr{{10, 0, 2, 15}}};
  std::array<std::uint8_t, ArpPacket::kLen> buf{};
  ASSERT_EQ(r.emit(buf), ArpPacket::kLen);
  auto p = ArpPacket::parse(buf);
  ASSERT_TRUE(p);
  auto back = ArpRepr::parse(*p);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, r);
}

TEST(WireArp, EmitRejectsShortBuffer) {
  std::array<std::uint8_t, ArpPacket::kLen - 1> buf{};
  EXPECT_EQ(ArpRepr{}.emit(buf), 0u);
}

TEST(WireArp, TruncatedBelowMinimum) {
  auto b = arp_bytes();
  for (std::size_t n = 0; n < ArpPacket::kLen; ++n) {
    auto p = ArpPacket::parse(Bytes(b).first(n));
    ASSERT_FALSE(p) << n;
    EXPECT_EQ(p.error(), ParseError::Truncated) << n;
  }
}

TEST(WireArp, WrongHardwareLenUnsupported) {
  auto b = arp_bytes();
  b[4] = 8;
  auto p = ArpPacket::parse(b);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error(), ParseError::Unsupported);
}

TEST(WireArp, WrongProtocolLenUnsupported) {
  auto b = arp_bytes();
  b[5] = 16;
  auto p = ArpPacket::parse(b);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error(), ParseError::Unsupported);
}

TEST(WireArp, WrongHardwareTypeUnsupported) {
  auto b = arp_bytes();
  b[1] = 6;  // IEEE 802
  EXPECT_EQ(ArpPacket::parse(b).error(), ParseError::Unsupported);
}

TEST(WireArp, WrongProtocolTypeUnsupported) {
  auto b = arp_bytes();
  b[2] = 0x86;
  b[3] = 0xdd;
  EXPECT_EQ(ArpPacket::parse(b).error(), ParseError::Unsupported);
}

TEST(WireArp, UnknownOperationUnsupportedInRepr) {
  auto b = arp_bytes();
  b[7] = 3;  // RARP request
  auto p = ArpPacket::parse(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->operation(), 3);
  EXPECT_EQ(ArpRepr::parse(*p).error(), ParseError::Unsupported);
}

}  // namespace
}  // namespace vnet::wire
