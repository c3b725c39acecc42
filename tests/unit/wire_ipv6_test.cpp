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

// A packet with the given extension headers (each already laid out, its
// first byte the next header) and upper-layer bytes.
std::vector<std::uint8_t> with_headers(IpProtocol first, std::vector<std::vector<std::uint8_t>> headers,
                                       std::vector<std::uint8_t> l4) {
  std::vector<std::uint8_t> payload;
  for (const auto& h : headers) payload.insert(payload.end(), h.begin(), h.end());
  payload.insert(payload.end(), l4.begin(), l4.end());
  Ipv6Repr r{*Ipv6Addr::parse("fec0::15"), *Ipv6Addr::parse("2001:db8::1"), first, 64,
             static_cast<std::uint16_t>(payload.size())};
  std::vector<std::uint8_t> buf(r.buffer_len());
  r.emit(buf);
  std::copy(payload.begin(), payload.end(), buf.begin() + 40);
  return buf;
}

Parsed<Ipv6Payload> walk(const std::vector<std::uint8_t>& buf) {
  auto p = Ipv6Packet::parse(buf);
  EXPECT_TRUE(p);
  if (!p) return ParseError::Truncated;
  return walk_extension_headers(*p);
}

constexpr std::uint8_t kTcp = 6, kUdp = 17, kRoute = 43, kFrag = 44, kOpts = 60, kNoNext = 59;

TEST(WireIpv6Extensions, NoHeadersGivesThePayload) {
  auto w = walk(with_headers(IpProtocol::Udp, {}, {1, 2, 3, 4, 5, 6, 7, 8}));
  ASSERT_TRUE(w);
  EXPECT_EQ(w->protocol, IpProtocol::Udp);
  EXPECT_EQ(w->l4.size(), 8u);
  EXPECT_EQ(w->extension_len, 0u);
  EXPECT_FALSE(w->has_fragment_header);
}

TEST(WireIpv6Extensions, WalksHopByHopRoutingOptionsAndAtomicFragment) {
  // Hop-by-hop with a router alert (type 5: skip if unknown) and PadN.
  std::vector<std::uint8_t> hbh = {kRoute, 0, 5, 2, 0, 0, 1, 0};
  std::vector<std::uint8_t> route = {kOpts, 0, 0, 0, 0, 0, 0, 0};  // segments left 0
  std::vector<std::uint8_t> dst_opts = {kFrag, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};  // PadN 12
  std::vector<std::uint8_t> frag = {kTcp, 0, 0, 0, 0, 0, 0, 42};  // offset 0, M 0: atomic
  auto w = walk(with_headers(IpProtocol::HopByHop, {hbh, route, dst_opts, frag}, {9, 9}));
  ASSERT_TRUE(w);
  EXPECT_EQ(w->protocol, IpProtocol::Tcp);
  EXPECT_EQ(w->extension_len, 40u);
  EXPECT_EQ(w->l4.size(), 2u);
  EXPECT_TRUE(w->has_fragment_header);
  EXPECT_FALSE(w->is_fragment());
  EXPECT_EQ(w->fragment_id, 42u);
}

TEST(WireIpv6Extensions, FirstFragmentIsAFragment) {
  std::vector<std::uint8_t> frag = {kUdp, 0, 0, 1, 0, 0, 0, 7};  // offset 0, M 1
  auto w = walk(with_headers(IpProtocol::Ipv6Frag, {frag}, {1, 2, 3, 4, 5, 6, 7, 8}));
  ASSERT_TRUE(w);
  EXPECT_TRUE(w->is_fragment());
  EXPECT_TRUE(w->more_fragments);
}

TEST(WireIpv6Extensions, LaterFragmentStopsTheWalk) {
  // Offset 1 (8 bytes): what follows is data even if it looks like a header.
  std::vector<std::uint8_t> frag = {kOpts, 0, 0, 8, 0, 0, 0, 7};
  auto w = walk(with_headers(IpProtocol::Ipv6Frag, {frag}, {0xff, 0xff, 0, 0, 0, 0, 0, 0}));
  ASSERT_TRUE(w);
  EXPECT_TRUE(w->is_fragment());
  EXPECT_EQ(w->fragment_offset, 1);
  EXPECT_EQ(w->l4.size(), 8u);
}

TEST(WireIpv6Extensions, TruncatedHeader) {
  EXPECT_EQ(walk(with_headers(IpProtocol::Ipv6Opts, {}, {kUdp, 0, 1, 0})).error(), ParseError::Truncated);
}

TEST(WireIpv6Extensions, LengthPastPayload) {
  // Claims 16 bytes, has 8.
  std::vector<std::uint8_t> opts = {kUdp, 1, 1, 4, 0, 0, 0, 0};
  EXPECT_EQ(walk(with_headers(IpProtocol::Ipv6Opts, {opts}, {})).error(), ParseError::Truncated);
}

TEST(WireIpv6Extensions, HopByHopNotFirst) {
  std::vector<std::uint8_t> opts = {0 /* hop-by-hop */, 0, 1, 4, 0, 0, 0, 0};
  std::vector<std::uint8_t> hbh = {kUdp, 0, 1, 4, 0, 0, 0, 0};
  EXPECT_EQ(walk(with_headers(IpProtocol::Ipv6Opts, {opts, hbh}, {})).error(), ParseError::BadOption);
}

TEST(WireIpv6Extensions, TooManyHeaders) {
  std::vector<std::vector<std::uint8_t>> chain(Ipv6Payload::kMaxExtensionHeaders + 1,
                                               std::vector<std::uint8_t>{kOpts, 0, 1, 4, 0, 0, 0, 0});
  chain.back()[0] = kUdp;
  EXPECT_EQ(walk(with_headers(IpProtocol::Ipv6Opts, chain, {})).error(), ParseError::BadOption);
}

TEST(WireIpv6Extensions, TooManyBytes) {
  // Two destination-options headers of 2040 bytes each: over the byte limit.
  std::vector<std::uint8_t> big(2048, 0);
  big[0] = kOpts;
  big[1] = 255;
  auto second = big;
  second[0] = kUdp;
  EXPECT_EQ(walk(with_headers(IpProtocol::Ipv6Opts, {big, second}, {})).error(), ParseError::BadOption);
}

TEST(WireIpv6Extensions, OptionRunsPastHeader) {
  std::vector<std::uint8_t> opts = {kUdp, 0, 1, 9, 0, 0, 0, 0};  // PadN of 9 in 6 bytes
  EXPECT_EQ(walk(with_headers(IpProtocol::Ipv6Opts, {opts}, {})).error(), ParseError::BadOption);
  std::vector<std::uint8_t> lone = {kUdp, 0, 0, 0, 0, 0, 0, 1};  // PadN type with no length byte
  EXPECT_EQ(walk(with_headers(IpProtocol::Ipv6Opts, {lone}, {})).error(), ParseError::BadOption);
}

TEST(WireIpv6Extensions, OptionToDiscardIsUnsupported) {
  std::vector<std::uint8_t> opts = {kUdp, 0, 0x80, 4, 0, 0, 0, 0};  // unknown, "discard and report"
  EXPECT_EQ(walk(with_headers(IpProtocol::Ipv6Opts, {opts}, {})).error(), ParseError::Unsupported);
}

TEST(WireIpv6Extensions, RoutingWithSegmentsLeftIsUnsupported) {
  std::vector<std::uint8_t> route = {kUdp, 0, 0, 1, 0, 0, 0, 0};
  EXPECT_EQ(walk(with_headers(IpProtocol::Ipv6Route, {route}, {})).error(), ParseError::Unsupported);
}

TEST(WireIpv6Extensions, TwoFragmentHeaders) {
  std::vector<std::uint8_t> f1 = {kFrag, 0, 0, 0, 0, 0, 0, 1};
  std::vector<std::uint8_t> f2 = {kUdp, 0, 0, 0, 0, 0, 0, 2};
  EXPECT_EQ(walk(with_headers(IpProtocol::Ipv6Frag, {f1, f2}, {})).error(), ParseError::BadOption);
}

TEST(WireIpv6Extensions, NoNextHeaderEndsTheWalk) {
  std::vector<std::uint8_t> opts = {kNoNext, 0, 1, 4, 0, 0, 0, 0};
  auto w = walk(with_headers(IpProtocol::Ipv6Opts, {opts}, {}));
  ASSERT_TRUE(w);
  EXPECT_EQ(w->protocol, IpProtocol::Ipv6NoNxt);
  EXPECT_TRUE(w->l4.empty());
}

TEST(WireIpv6Cidr, ParseContainsNetwork) {
  auto c = Ipv6Cidr::parse("fec0::15/64");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->prefix_len, 64);
  EXPECT_EQ(c->network(), *Ipv6Addr::parse("fec0::"));
  EXPECT_TRUE(c->contains(*Ipv6Addr::parse("fec0::2")));
  EXPECT_FALSE(c->contains(*Ipv6Addr::parse("fec0:0:0:1::2")));
  EXPECT_EQ(Ipv6Cidr::parse("2001:db8::/33")->network(), *Ipv6Addr::parse("2001:db8::"));
  EXPECT_TRUE(Ipv6Cidr::parse("2001:db8::/33")->contains(*Ipv6Addr::parse("2001:db8:7fff::1")));
  EXPECT_FALSE(Ipv6Cidr::parse("2001:db8::/33")->contains(*Ipv6Addr::parse("2001:db8:8000::1")));
  EXPECT_EQ(Ipv6Cidr::parse("fec0::1")->prefix_len, 128);
  EXPECT_FALSE(Ipv6Cidr::parse("fec0::/129"));
  EXPECT_FALSE(Ipv6Cidr::parse("fec0::/"));
  EXPECT_FALSE(Ipv6Cidr::parse("10.0.0.0/8"));
}

}  // namespace
}  // namespace vnet::wire
