#include "wire/ipv4.hpp"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <vector>

#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire_samples.hpp"

namespace vnet::wire {
namespace {

std::vector<std::uint8_t> dns_ip_bytes() {
  auto ip = Bytes(samples::kUdpDnsFrame).subspan(EthernetFrame::kHeaderLen);
  return {ip.begin(), ip.end()};
}

ParseError parse_error(Bytes b) {
  auto p = Ipv4Packet::parse(b);
  EXPECT_FALSE(p);
  return p ? ParseError::Unsupported : p.error();
}

TEST(WireIpv4, ParsesKnownPacket) {
  const auto b = dns_ip_bytes();
  auto p = Ipv4Packet::parse(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->version(), 4);
  EXPECT_EQ(p->header_len(), 20u);
  EXPECT_EQ(p->total_len(), 57);
  EXPECT_EQ(p->ident(), 0x1c46);
  EXPECT_TRUE(p->dont_fragment());
  EXPECT_FALSE(p->is_fragment());
  EXPECT_EQ(p->ttl(), 64);
  EXPECT_EQ(p->protocol(), IpProtocol::Udp);
  EXPECT_EQ(p->checksum(), 0x065d);
  EXPECT_TRUE(p->verify_checksum());
  EXPECT_EQ(p->src(), (Ipv4Addr{{10, 0, 2, 15}}));
  EXPECT_EQ(p->dst(), (Ipv4Addr{{10, 0, 2, 3}}));
  EXPECT_EQ(p->payload().size(), 37u);
  EXPECT_TRUE(p->options().empty());

  auto r = Ipv4Repr::parse(*p);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->payload_len, 37);
}

TEST(WireIpv4, TrimsEthernetPadding) {
  auto b = dns_ip_bytes();
  b.resize(b.size() + 9, 0);
  auto p = Ipv4Packet::parse(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->bytes().size(), 57u);
  EXPECT_EQ(p->payload().size(), 37u);
}

TEST(WireIpv4, RoundTrip) {
  Ipv4Repr r{Ipv4Addr{{192, 168, 1, 1}}, Ipv4Addr{{8, 8, 4, 4}}, IpProtocol::Tcp, 17, 100, 0xb8, 0x4242, false};
  std::vector<std::uint8_t> buf(r.buffer_len());
  ASSERT_EQ(r.emit(buf), 20u);
  auto p = Ipv4Packet::parse(buf);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->verify_checksum());
  EXPECT_EQ(p->dscp(), 0xb8 >> 2);
  auto back = Ipv4Repr::parse(*p);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, r);
}

TEST(WireIpv4, EmitRejectsShortBufferAndOversizePayload) {
  std::array<std::uint8_t, 19> small{};
  EXPECT_EQ(Ipv4Repr{}.emit(small), 0u);
  std::array<std::uint8_t, 20> buf{};
  Ipv4Repr big;
  big.payload_len = 0xffff - 19;
  EXPECT_EQ(big.emit(buf), 0u);
}

TEST(WireIpv4, OptionsSkipped) {
  // IHL 6: one 4-byte option word (NOP NOP NOP EOL) before a 4-byte payload.
  std::vector<std::uint8_t> b = {0x46, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1,
                                 10,   0, 0, 2,  1, 1, 1, 0, 0xaa, 0xbb, 0xcc, 0xdd};
  store_be16(b, 10, internet_checksum(Bytes(b).first(24)));
  auto p = Ipv4Packet::parse(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->header_len(), 24u);
  EXPECT_EQ(p->options().size(), 4u);
  ASSERT_EQ(p->payload().size(), 4u);
  EXPECT_EQ(p->payload()[0], 0xaa);
  EXPECT_TRUE(p->verify_checksum());
}

TEST(WireIpv4, FragmentFields) {
  auto b = dns_ip_bytes();
  store_be16(b, 6, 0x2000 | 185);  // MF, offset 185*8
  auto p = Ipv4Packet::parse(b);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->more_fragments());
  EXPECT_FALSE(p->dont_fragment());
  EXPECT_EQ(p->frag_offset(), 1480);
  EXPECT_TRUE(p->is_fragment());

  store_be16(b, 6, 185);  // last fragment
  EXPECT_TRUE(Ipv4Packet::parse(b)->is_fragment());
}

TEST(WireIpv4, TruncatedBelowMinimum) {
  auto b = dns_ip_bytes();
  for (std::size_t n = 0; n < Ipv4Packet::kMinHeaderLen; ++n) {
    EXPECT_EQ(parse_error(Bytes(b).first(n)), ParseError::Truncated) << n;
  }
}

TEST(WireIpv4, BadVersion) {
  auto b = dns_ip_bytes();
  b[0] = 0x65;
  EXPECT_EQ(parse_error(b), ParseError::BadVersion);
}

TEST(WireIpv4, IhlBelowFive) {
  auto b = dns_ip_bytes();
  for (std::uint8_t ihl = 0; ihl < 5; ++ihl) {
    b[0] = static_cast<std::uint8_t>(0x40 | ihl);
    EXPECT_EQ(parse_error(b), ParseError::BadHeaderLength) << int{ihl};
  }
}

TEST(WireIpv4, IhlBeyondBuffer) {
  auto b = dns_ip_bytes();
  b[0] = 0x4f;  // 60-byte header in a 57-byte buffer
  EXPECT_EQ(parse_error(b), ParseError::Truncated);
}

TEST(WireIpv4, TotalLengthBeyondBuffer) {
  auto b = dns_ip_bytes();
  store_be16(b, 2, static_cast<std::uint16_t>(b.size() + 1));
  EXPECT_EQ(parse_error(b), ParseError::Truncated);
}

TEST(WireIpv4, TotalLengthBelowHeader) {
  auto b = dns_ip_bytes();
  store_be16(b, 2, 19);
  EXPECT_EQ(parse_error(b), ParseError::BadLength);
}

TEST(WireIpv4, BadChecksumDetected) {
  auto b = dns_ip_bytes();
  b[8] = 63;  // TTL changed without fixing the checksum
  auto p = Ipv4Packet::parse(b);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->verify_checksum());
  EXPECT_EQ(Ipv4Repr::parse(*p).error(), ParseError::BadChecksum);
  EXPECT_TRUE(Ipv4Repr::parse(*p, /*verify_checksum=*/false));
}

TEST(WireIpv4, MutSettersKeepChecksumValid) {
  std::mt19937 rng(791);
  auto b = dns_ip_bytes();
  auto m = Ipv4PacketMut::parse(b);
  ASSERT_TRUE(m);
  auto p = *m;
  for (int i = 0; i < 50; ++i) {
    p.set_src(Ipv4Addr::from_u32(static_cast<std::uint32_t>(rng())));
    p.set_dst(Ipv4Addr::from_u32(static_cast<std::uint32_t>(rng())));
    p.set_ttl(static_cast<std::uint8_t>(rng()));
    ASSERT_TRUE(p.verify_checksum()) << i;
    const std::uint16_t incremental = p.checksum();
    p.fill_checksum();
    EXPECT_EQ(p.checksum(), incremental) << i;
  }
}

}  // namespace
}  // namespace vnet::wire
