#include "wire/icmpv6.hpp"

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

namespace vnet::wire {
namespace {

Ipv6Addr addr(std::string_view s) { return *Ipv6Addr::parse(s); }

const MacAddr kMac{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}};

std::vector<std::uint8_t> emit(const NdpRepr& r, const Ipv6Addr& src, const Ipv6Addr& dst) {
  std::vector<std::uint8_t> b(r.buffer_len());
  EXPECT_EQ(r.emit(b, src, dst), b.size());
  return b;
}

// A neighbour solicitation with the given option bytes after the target.
std::vector<std::uint8_t> ns_with_options(std::initializer_list<std::uint8_t> opts) {
  NdpRepr ns;
  ns.type = Icmpv6Type::NeighborSolicit;
  ns.target = addr("fec0::2");
  auto b = emit(ns, addr("fe80::1"), solicited_node(ns.target));
  b.insert(b.end(), opts);
  return b;
}

TEST(WireIcmpv6, RouterAdvertRoundTripWithAllOptions) {
  const Ipv6Addr dns[] = {addr("fec0::3")};
  const std::string_view search[] = {"vnet.test", "example.org"};
  NdpRepr ra;
  ra.type = Icmpv6Type::RouterAdvert;
  ra.ra_flags = kRaFlagOther;
  ra.router_lifetime = 1800;
  ra.options.source_lladdr = kMac;
  ra.options.prefix = NdpPrefixInfo{64, kPrefixFlagOnLink | kPrefixFlagAuto, 86400, 14400, addr("fec0::")};
  ra.options.mtu = 1500;
  ra.options.rdnss_lifetime = 600;
  ra.options.rdnss = dns;
  ra.options.dnssl_lifetime = 600;
  ra.options.dnssl = search;
  const Ipv6Addr src = link_local_from_mac(kMac), dst = all_nodes_multicast();
  auto b = emit(ra, src, dst);
  EXPECT_EQ(b.size() % 8, 0u);
  auto p = Icmpv6Packet::parse(b);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->verify_checksum(src, dst));
  auto m = NdpMessage::parse(b);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type(), Icmpv6Type::RouterAdvert);
  EXPECT_EQ(m->ra_flags(), kRaFlagOther);
  EXPECT_EQ(m->router_lifetime(), 1800);
  EXPECT_EQ(m->source_lladdr(), kMac);
  auto pi = m->find(ndp_opt::kPrefixInfo);
  ASSERT_TRUE(pi);
  auto prefix = NdpPrefixInfo::parse(pi->data);
  ASSERT_TRUE(prefix);
  EXPECT_EQ(*prefix, *ra.options.prefix);
  auto mtu = m->find(ndp_opt::kMtu);
  ASSERT_TRUE(mtu);
  EXPECT_EQ(load_be32(mtu->data, 2), 1500u);
  auto rd = m->find(ndp_opt::kRdnss);
  ASSERT_TRUE(rd);
  auto rdnss = NdpRdnssView::parse(rd->data);
  ASSERT_TRUE(rdnss);
  EXPECT_EQ(rdnss->lifetime, 600u);
  ASSERT_EQ(rdnss->count(), 1u);
  EXPECT_EQ(rdnss->at(0), addr("fec0::3"));
  auto sl = m->find(ndp_opt::kDnssl);
  ASSERT_TRUE(sl);
  const std::string_view expected("\x04vnet\x04test\x00\x07" "example\x03org\x00", 24);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(sl->data.data()) + 6, expected.size()), expected);
}

TEST(WireIcmpv6, NeighborAdvertRoundTrip) {
  NdpRepr na;
  na.type = Icmpv6Type::NeighborAdvert;
  na.na_flags = kNaFlagRouter | kNaFlagSolicited | kNaFlagOverride;
  na.target = addr("fec0::2");
  na.options.target_lladdr = kMac;
  auto b = emit(na, addr("fec0::2"), addr("fec0::5054:ff:fe12:3456"));
  auto m = NdpMessage::parse(b);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->na_flags(), kNaFlagRouter | kNaFlagSolicited | kNaFlagOverride);
  EXPECT_EQ(m->target(), addr("fec0::2"));
  EXPECT_EQ(m->target_lladdr(), kMac);
  EXPECT_FALSE(m->source_lladdr());
}

TEST(WireIcmpv6, AddressHelpers) {
  EXPECT_EQ(solicited_node(addr("fec0::5054:ff:fe12:3456")), addr("ff02::1:ff12:3456"));
  EXPECT_EQ(ipv6_multicast_mac(addr("ff02::1:ff12:3456")), (MacAddr{{0x33, 0x33, 0xff, 0x12, 0x34, 0x56}}));
  EXPECT_EQ(link_local_from_mac(MacAddr{{0x52, 0x54, 0, 0x12, 0x34, 0x56}}), addr("fe80::5054:ff:fe12:3456"));
  EXPECT_EQ(all_routers_multicast(), addr("ff02::2"));
}

TEST(WireIcmpv6, PacketTooBigQuotesAtMostTheMinimumMtu) {
  std::vector<std::uint8_t> big(3000, 0x60);
  auto r = icmpv6_packet_too_big(1400, big);
  EXPECT_EQ(r.type, Icmpv6Type::PacketTooBig);
  EXPECT_EQ(r.rest_of_header, 1400u);
  EXPECT_EQ(r.buffer_len(), 1280u - 40u);
}

TEST(WireIcmpv6Malformed, NotAnNdpType) {
  const std::uint8_t echo[8] = {128, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(NdpMessage::parse(echo).error(), ParseError::Unsupported);
}

TEST(WireIcmpv6Malformed, TruncatedFixedPart) {
  auto b = ns_with_options({});
  EXPECT_EQ(NdpMessage::parse(Bytes(b).first(23)).error(), ParseError::Truncated);
  const std::uint8_t tiny[4] = {135, 0, 0, 0};
  EXPECT_EQ(NdpMessage::parse(tiny).error(), ParseError::Truncated);
  const std::uint8_t ra[12] = {134};
  EXPECT_EQ(NdpMessage::parse(ra).error(), ParseError::Truncated);
}

TEST(WireIcmpv6Malformed, NonZeroCode) {
  auto b = ns_with_options({});
  b[1] = 1;
  EXPECT_EQ(NdpMessage::parse(b).error(), ParseError::BadOption);
}

TEST(WireIcmpv6Malformed, ZeroLengthOptionWouldLoop) {
  EXPECT_EQ(NdpMessage::parse(ns_with_options({1, 0, 0, 0, 0, 0, 0, 0})).error(), ParseError::BadOption);
}

TEST(WireIcmpv6Malformed, OptionPastTheEnd) {
  EXPECT_EQ(NdpMessage::parse(ns_with_options({1, 2, 1, 2, 3, 4, 5, 6})).error(), ParseError::BadOption);
  EXPECT_EQ(NdpMessage::parse(ns_with_options({1})).error(), ParseError::BadOption);
}

TEST(WireIcmpv6Malformed, LinkLayerOptionOfOtherSizeIsIgnored) {
  const auto packet = ns_with_options({1, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14});
  auto m = NdpMessage::parse(packet);  // a view: the packet must outlive it
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->source_lladdr());
}

TEST(WireIcmpv6Malformed, PrefixInfoOfWrongLength) {
  std::vector<std::uint8_t> data(22, 0);
  EXPECT_EQ(NdpPrefixInfo::parse(data).error(), ParseError::BadOption);
  std::vector<std::uint8_t> long_prefix(30, 0);
  long_prefix[0] = 129;
  EXPECT_EQ(NdpPrefixInfo::parse(long_prefix).error(), ParseError::BadOption);
}

TEST(WireIcmpv6Malformed, RdnssWithoutAWholeAddress) {
  std::vector<std::uint8_t> data(6, 0);  // length 1: lifetime only
  EXPECT_EQ(NdpRdnssView::parse(data).error(), ParseError::BadOption);
  std::vector<std::uint8_t> half(14, 0);  // length 2: 8 bytes of an address
  EXPECT_EQ(NdpRdnssView::parse(half).error(), ParseError::BadOption);
}

TEST(WireIcmpv6Malformed, EmitIntoTooSmallBuffer) {
  NdpRepr na;
  na.type = Icmpv6Type::NeighborAdvert;
  na.options.target_lladdr = kMac;
  std::vector<std::uint8_t> b(na.buffer_len() - 1);
  EXPECT_EQ(na.emit(b, addr("fec0::2"), addr("fec0::9")), 0u);
  NdpRepr bad;
  bad.type = Icmpv6Type::EchoRequest;
  std::vector<std::uint8_t> c(64);
  EXPECT_EQ(bad.emit(c, addr("fec0::2"), addr("fec0::9")), 0u);
}

}  // namespace
}  // namespace vnet::wire
