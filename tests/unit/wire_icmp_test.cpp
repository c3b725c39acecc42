#include "wire/icmp.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/ipv6.hpp"
#include "wire_samples.hpp"

namespace vnet::wire {
namespace {

std::vector<std::uint8_t> echo_v4_bytes() {
  auto b = Bytes(samples::kIcmpEchoPacket).subspan(Ipv4Packet::kMinHeaderLen);
  return {b.begin(), b.end()};
}

TEST(WireIcmp, ParsesKnownEchoRequest) {
  auto ip = Ipv4Packet::parse(samples::kIcmpEchoPacket);
  ASSERT_TRUE(ip);
  EXPECT_TRUE(ip->verify_checksum());
  EXPECT_EQ(ip->protocol(), IpProtocol::Icmp);
  auto p = Icmpv4Packet::parse(ip->payload());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->type(), Icmpv4Type::EchoRequest);
  EXPECT_EQ(p->code(), 0);
  EXPECT_EQ(p->checksum(), 0x5435);
  EXPECT_TRUE(p->verify_checksum());
  EXPECT_EQ(p->echo_ident(), 0x1234);
  EXPECT_EQ(p->echo_seq(), 1);
  EXPECT_FALSE(p->is_error());
  EXPECT_EQ(std::memcmp(p->payload().data(), "abcdefgh", 8), 0);
}

TEST(WireIcmp, EchoReplyRoundTripBuiltInPlace) {
  // Answer a ping by overwriting the request: data aliases the buffer.
  auto b = echo_v4_bytes();
  auto req = Icmpv4Packet::parse(b);
  ASSERT_TRUE(req);
  auto reply = Icmpv4Repr::echo_reply(req->echo_ident(), req->echo_seq(), req->payload());
  ASSERT_EQ(reply.emit(b), 16u);
  auto p = Icmpv4Packet::parse(b);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->verify_checksum());
  auto r = Icmpv4Repr::parse(*p);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, Icmpv4Type::EchoReply);
  EXPECT_EQ(r->echo_ident(), 0x1234);
  EXPECT_EQ(r->echo_seq(), 1);
  EXPECT_EQ(std::memcmp(r->data.data(), "abcdefgh", 8), 0);
}

TEST(WireIcmp, EchoRequestRoundTrip) {
  const std::uint8_t data[] = {1, 2, 3};
  auto req = Icmpv4Repr::echo_request(7, 9, data);
  std::vector<std::uint8_t> buf(req.buffer_len());
  ASSERT_EQ(req.emit(buf), 11u);
  auto r = Icmpv4Repr::parse(*Icmpv4Packet::parse(buf));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, Icmpv4Type::EchoRequest);
  EXPECT_EQ(r->echo_ident(), 7);
  EXPECT_EQ(r->echo_seq(), 9);
  EXPECT_EQ(r->data.size(), 3u);
}

TEST(WireIcmp, DestUnreachableQuotesHeaderPlusEight) {
  Bytes original(samples::kUdpDnsFrame);
  original = original.subspan(EthernetFrame::kHeaderLen);
  auto du = Icmpv4Repr::dest_unreachable(Icmpv4Unreachable::Port, original);
  EXPECT_EQ(du.data.size(), 28u);
  std::vector<std::uint8_t> buf(du.buffer_len());
  ASSERT_EQ(du.emit(buf), 36u);
  auto p = Icmpv4Packet::parse(buf);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->verify_checksum());
  EXPECT_TRUE(p->is_error());
  EXPECT_EQ(p->type(), Icmpv4Type::DestUnreachable);
  EXPECT_EQ(p->code(), Icmpv4Unreachable::Port);
  EXPECT_EQ(std::memcmp(p->payload().data(), original.data(), 28), 0);
}

TEST(WireIcmp, FragNeededCarriesMtu) {
  Bytes original = Bytes(samples::kIcmpEchoPacket);
  auto du = Icmpv4Repr::dest_unreachable(Icmpv4Unreachable::FragNeeded, original, 1400);
  std::vector<std::uint8_t> buf(du.buffer_len());
  ASSERT_NE(du.emit(buf), 0u);
  EXPECT_EQ(Icmpv4Packet::parse(buf)->next_hop_mtu(), 1400);
}

TEST(WireIcmp, DestUnreachableOfShortGarbageQuotesWhatExists) {
  const std::uint8_t junk[] = {1, 2, 3};
  auto du = Icmpv4Repr::dest_unreachable(Icmpv4Unreachable::Host, junk);
  EXPECT_EQ(du.data.size(), 3u);
}

TEST(WireIcmp, EmitRejectsShortBuffer) {
  std::vector<std::uint8_t> buf(10);
  const std::uint8_t data[4] = {};
  EXPECT_EQ(Icmpv4Repr::echo_request(1, 1, data).emit(buf), 0u);
}

TEST(WireIcmp, TruncatedBelowMinimum) {
  auto b = echo_v4_bytes();
  for (std::size_t n = 0; n < Icmpv4Packet::kHeaderLen; ++n) {
    EXPECT_EQ(Icmpv4Packet::parse(Bytes(b).first(n)).error(), ParseError::Truncated) << n;
    EXPECT_EQ(Icmpv6Packet::parse(Bytes(b).first(n)).error(), ParseError::Truncated) << n;
  }
}

TEST(WireIcmp, BadChecksumDetected) {
  auto b = echo_v4_bytes();
  b.back() ^= 0x80;
  auto p = Icmpv4Packet::parse(b);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->verify_checksum());
  EXPECT_EQ(Icmpv4Repr::parse(*p).error(), ParseError::BadChecksum);
}

TEST(WireIcmp, SetEchoIdentKeepsChecksumValid) {
  auto b = echo_v4_bytes();
  auto p = *Icmpv4PacketMut::parse(b);
  p.set_echo_ident(0xbeef);
  EXPECT_EQ(p.echo_ident(), 0xbeef);
  EXPECT_TRUE(p.verify_checksum());
}

TEST(WireIcmpv6, ParsesKnownEchoRequest) {
  auto ip = Ipv6Packet::parse(samples::kIcmpv6EchoPacket);
  ASSERT_TRUE(ip);
  EXPECT_EQ(ip->next_header(), IpProtocol::Icmpv6);
  auto p = Icmpv6Packet::parse(ip->payload());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->type(), Icmpv6Type::EchoRequest);
  EXPECT_EQ(p->checksum(), 0xa69a);
  EXPECT_TRUE(p->verify_checksum(ip->src(), ip->dst()));
  EXPECT_FALSE(p->verify_checksum(ip->dst(), ip->dst()));
  EXPECT_EQ(p->echo_ident(), 0x42);
  EXPECT_EQ(p->echo_seq(), 7);
  EXPECT_FALSE(p->is_error());
}

TEST(WireIcmpv6, RoundTripAndNatRewrite) {
  const auto src = *Ipv6Addr::parse("fd00::2");
  const auto dst = *Ipv6Addr::parse("2001:db8::1");
  const std::uint8_t data[] = {9, 8, 7, 6, 5};
  auto rep = Icmpv6Repr::echo_reply(3, 4, data);
  std::vector<std::uint8_t> buf(rep.buffer_len());
  ASSERT_EQ(rep.emit(buf, src, dst), 13u);
  auto p = Icmpv6Packet::parse(buf);
  ASSERT_TRUE(p);
  auto r = Icmpv6Repr::parse(*p, src, dst);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, Icmpv6Type::EchoReply);
  EXPECT_EQ(r->echo_ident(), 3);
  EXPECT_EQ(r->echo_seq(), 4);

  auto m = *Icmpv6PacketMut::parse(buf);
  const auto new_src = *Ipv6Addr::parse("fd00::77");
  m.set_echo_ident(0x5555);
  m.adjust_for_address_change(src, new_src);
  EXPECT_TRUE(m.verify_checksum(new_src, dst));
  EXPECT_EQ(Icmpv6Repr::parse(m, src, dst).error(), ParseError::BadChecksum);
}

TEST(WireIcmpv6, DestUnreachableFitsMinimumMtu) {
  std::vector<std::uint8_t> big(2000, 0x60);
  auto du = Icmpv6Repr::dest_unreachable(4, big);
  EXPECT_EQ(du.data.size(), Icmpv6Repr::kMaxErrorQuote);
  EXPECT_EQ(40 + du.buffer_len(), 1280u);
}

}  // namespace
}  // namespace vnet::wire
