#include "wire/ethernet.hpp"

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "wire_samples.hpp"

namespace vnet::wire {
namespace {

const MacAddr kGuest{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
const MacAddr kGateway{{0x52, 0x54, 0x00, 0x12, 0x35, 0x02}};

std::vector<std::uint8_t> tagged_frame() {
  // dst, src, 0x8100, TCI (pcp 5, vid 100), inner type IPv4, 2 payload bytes
  return {0x52, 0x54, 0x00, 0x12, 0x35, 0x02, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56,
          0x81, 0x00, 0xa0, 0x64, 0x08, 0x00, 0xde, 0xad};
}

TEST(WireEthernet, ParsesKnownUntaggedFrame) {
  auto f = EthernetFrame::parse(samples::kUdpDnsFrame);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->dst(), kGateway);
  EXPECT_EQ(f->src(), kGuest);
  EXPECT_EQ(f->ethertype(), EtherType::Ipv4);
  EXPECT_FALSE(f->has_vlan());
  EXPECT_EQ(f->vlan_id(), 0);
  EXPECT_EQ(f->header_len(), 14u);
  EXPECT_EQ(f->payload().size(), sizeof(samples::kUdpDnsFrame) - 14);
  EXPECT_EQ(f->payload()[0], 0x45);
}

TEST(WireEthernet, ParsesVlanTag) {
  auto bytes = tagged_frame();
  auto f = EthernetFrame::parse(bytes);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->has_vlan());
  EXPECT_EQ(f->vlan_id(), 100);
  EXPECT_EQ(f->vlan_pcp(), 5);
  EXPECT_EQ(f->ethertype(), EtherType::Ipv4);
  EXPECT_EQ(f->header_len(), 18u);
  ASSERT_EQ(f->payload().size(), 2u);
  EXPECT_EQ(f->payload()[0], 0xde);
}

TEST(WireEthernet, RoundTripUntagged) {
  EthernetRepr r{kGateway, kGuest, EtherType::Arp, std::nullopt};
  std::array<std::uint8_t, 20> buf{};
  ASSERT_EQ(r.emit(buf), 14u);
  auto f = EthernetFrame::parse(buf);
  ASSERT_TRUE(f);
  EXPECT_EQ(EthernetRepr::parse(*f), r);
  EXPECT_EQ(f->payload().size(), 6u);
}

TEST(WireEthernet, RoundTripTagged) {
  EthernetRepr r{MacAddr::broadcast(), kGuest, EtherType::Ipv6, std::uint16_t{0x2fff}};
  std::array<std::uint8_t, 18> buf{};
  ASSERT_EQ(r.emit(buf), 18u);
  auto f = EthernetFrame::parse(buf);
  ASSERT_TRUE(f);
  EXPECT_EQ(EthernetRepr::parse(*f), r);
  EXPECT_EQ(f->vlan_id(), 0xfff);
  EXPECT_TRUE(f->payload().empty());
}

TEST(WireEthernet, EmitRejectsShortBuffer) {
  std::array<std::uint8_t, 17> buf{};
  EXPECT_EQ((EthernetRepr{kGateway, kGuest, EtherType::Ipv4, std::nullopt}.emit(std::span(buf).first(13))), 0u);
  EXPECT_EQ((EthernetRepr{kGateway, kGuest, EtherType::Ipv4, std::uint16_t{1}}.emit(buf)), 0u);
}

TEST(WireEthernet, TruncatedBelowMinimum) {
  for (std::size_t n = 0; n < EthernetFrame::kMinLen; ++n) {
    auto f = EthernetFrame::parse(Bytes(samples::kUdpDnsFrame).first(n));
    ASSERT_FALSE(f) << n;
    EXPECT_EQ(f.error(), ParseError::Truncated) << n;
  }
}

TEST(WireEthernet, VlanTagTruncated) {
  auto bytes = tagged_frame();
  for (std::size_t n = 14; n < EthernetFrame::kVlanHeaderLen; ++n) {
    auto f = EthernetFrame::parse(Bytes(bytes).first(n));
    ASSERT_FALSE(f) << n;
    EXPECT_EQ(f.error(), ParseError::Truncated) << n;
  }
}

TEST(WireEthernet, MutRewritesMacs) {
  std::vector<std::uint8_t> bytes(std::begin(samples::kUdpDnsFrame), std::end(samples::kUdpDnsFrame));
  auto f = EthernetFrameMut::parse(bytes);
  ASSERT_TRUE(f);
  auto m = *f;
  m.set_src(kGateway);
  m.set_dst(kGuest);
  EXPECT_EQ(m.src(), kGateway);
  EXPECT_EQ(m.dst(), kGuest);
  EXPECT_EQ(m.payload_mut().data(), bytes.data() + 14);
}

TEST(WireEthernet, ErrorStrings) {
  EXPECT_STREQ(to_string(ParseError::Truncated), "truncated");
  EXPECT_STREQ(to_string(ParseError::BadChecksum), "bad checksum");
}

}  // namespace
}  // namespace vnet::wire
