// Neighbor Discovery of the NAT gateway (nat/ndp) with its neighbour table:
// messages in as a guest's kernel sends them, frames out as the switch
// would carry them.
#include "nat/ndp.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "nat/neigh.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv6.hpp"

namespace vnet::nat {
namespace {

using namespace vnet::wire;

Ipv6Addr a6(std::string_view s) { return *Ipv6Addr::parse(s); }
MacAddr mac(std::uint8_t last) { return MacAddr{{0x52, 0x54, 0x00, 0x12, 0x34, last}}; }
const MacAddr kGwMac{{0x52, 0x55, 10, 0, 2, 2}};

struct Out {
  MacAddr dst_mac;
  Ipv6Addr src, dst;
  std::uint8_t hop_limit = 0;
  std::vector<std::uint8_t> icmp;
};

class Ndp : public ::testing::Test {
 protected:
  Ndp() {
    table.set_gateway_link_local(link_local_from_mac(kGwMac));
  }

  Ipv6Settings settings() {
    Ipv6Settings s;
    s.prefix = a6("fec0::");
    s.gateway = a6("fec0::2");
    s.dns = a6("fec0::3");
    s.mac = kGwMac;
    s.domain = "vnet.test";
    return s;
  }

  void capture(Bytes frame) {
    auto eth = EthernetFrame::parse(frame);
    ASSERT_TRUE(eth);
    ASSERT_EQ(eth->ethertype(), EtherType::Ipv6);
    ASSERT_EQ(eth->src(), kGwMac);
    auto ip = Ipv6Packet::parse(eth->payload());
    ASSERT_TRUE(ip);
    auto icmp = Icmpv6Packet::parse(ip->payload());
    ASSERT_TRUE(icmp);
    EXPECT_TRUE(icmp->verify_checksum(ip->src(), ip->dst()));
    sent.push_back({eth->dst(), ip->src(), ip->dst(), ip->hop_limit(), {ip->payload().begin(), ip->payload().end()}});
  }

  // Delivers an NDP message as guest (port, m) would send it.
  void deliver(PortId port, const MacAddr& m, const Ipv6Addr& src, const Ipv6Addr& dst, const NdpRepr& r,
               std::uint8_t hop_limit = 255) {
    std::vector<std::uint8_t> b(r.buffer_len());
    ASSERT_EQ(r.emit(b, src, dst), b.size());
    ndp.on_message(port, m, src, dst, hop_limit, b);
  }

  // A message from guest 1's link-local address to a server of its own
  // settings (the fixture's `ndp` is the default one).
  void deliver_to(NdpServer& server, const Ipv6Addr& dst, const NdpRepr& r) {
    std::vector<std::uint8_t> b(r.buffer_len());
    ASSERT_EQ(r.emit(b, guest_ll, dst), b.size());
    server.on_message(1, mac(1), guest_ll, dst, 255, b);
  }
  void solicit_router(NdpServer& server) {
    NdpRepr rs;
    rs.type = Icmpv6Type::RouterSolicit;
    rs.options.source_lladdr = mac(1);
    deliver_to(server, all_routers_multicast(), rs);
  }

  NdpRepr ns(const Ipv6Addr& target, std::optional<MacAddr> sllao) {
    NdpRepr r;
    r.type = Icmpv6Type::NeighborSolicit;
    r.target = target;
    r.options.source_lladdr = sllao;
    return r;
  }

  NdpRepr na(const Ipv6Addr& target, std::optional<MacAddr> tllao, std::uint8_t flags = kNaFlagOverride) {
    NdpRepr r;
    r.type = Icmpv6Type::NeighborAdvert;
    r.target = target;
    r.na_flags = flags;
    r.options.target_lladdr = tllao;
    return r;
  }

  EventLoop loop;
  NatConfig cfg;
  NatCounters ctr;
  NeighTable table{cfg, ctr, 300 * kSeconds};
  std::vector<Out> sent;
  Ipv6ControlOut out{kGwMac, [this](Bytes f) { capture(f); }};
  NdpServer ndp{loop, out, table, ctr, settings()};
  const Ipv6Addr guest_ll = link_local_from_mac(mac(1));
};

TEST_F(Ndp, AnswersSolicitationForGatewayAndBindsTheAsker) {
  deliver(1, mac(1), guest_ll, solicited_node(a6("fec0::2")), ns(a6("fec0::2"), mac(1)));
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].dst_mac, mac(1));
  EXPECT_EQ(sent[0].dst, guest_ll);
  EXPECT_EQ(sent[0].src, a6("fec0::2"));
  EXPECT_EQ(sent[0].hop_limit, 255);
  auto m = NdpMessage::parse(sent[0].icmp);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type(), Icmpv6Type::NeighborAdvert);
  EXPECT_EQ(m->target(), a6("fec0::2"));
  EXPECT_EQ(m->na_flags(), kNaFlagRouter | kNaFlagSolicited | kNaFlagOverride);
  EXPECT_EQ(m->target_lladdr(), kGwMac);
  EXPECT_EQ(table.port_of(IpAddr(guest_ll)), 1u);
  EXPECT_EQ(ctr.ndp_na_sent, 1u);
}

TEST_F(Ndp, AnswersForDnsAndLinkLocalButNotForGuests) {
  deliver(1, mac(1), guest_ll, solicited_node(a6("fec0::3")), ns(a6("fec0::3"), mac(1)));
  deliver(1, mac(1), guest_ll, ndp.link_local(), ns(ndp.link_local(), mac(1)));
  deliver(1, mac(1), guest_ll, solicited_node(a6("fec0::99")), ns(a6("fec0::99"), mac(1)));
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(NdpMessage::parse(sent[1].icmp)->target(), ndp.link_local());
}

TEST_F(Ndp, HopLimitOtherThan255IsDropped) {
  deliver(1, mac(1), guest_ll, solicited_node(a6("fec0::2")), ns(a6("fec0::2"), mac(1)), 254);
  EXPECT_TRUE(sent.empty());
  EXPECT_EQ(ctr.drop_ndp_invalid, 1u);
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(Ndp, BadChecksumIsDropped) {
  auto r = ns(a6("fec0::2"), mac(1));
  std::vector<std::uint8_t> b(r.buffer_len());
  r.emit(b, guest_ll, solicited_node(a6("fec0::2")));
  b[2] ^= 1;
  ndp.on_message(1, mac(1), guest_ll, solicited_node(a6("fec0::2")), 255, b);
  EXPECT_TRUE(sent.empty());
  EXPECT_EQ(ctr.drop_bad_checksum, 1u);
}

TEST_F(Ndp, DadProbeForGatewayAddressIsDefendedToAllNodes) {
  deliver(1, mac(1), Ipv6Addr{}, solicited_node(a6("fec0::2")), ns(a6("fec0::2"), std::nullopt));
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].dst, all_nodes_multicast());
  EXPECT_EQ(sent[0].dst_mac, ipv6_multicast_mac(all_nodes_multicast()));
  EXPECT_EQ(NdpMessage::parse(sent[0].icmp)->na_flags() & kNaFlagSolicited, 0);
  // A DAD probe with a link-layer option is invalid (RFC 4861 7.1.1).
  deliver(1, mac(1), Ipv6Addr{}, solicited_node(a6("fec0::2")), ns(a6("fec0::2"), mac(1)));
  EXPECT_EQ(ctr.drop_ndp_invalid, 1u);
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(Ndp, RouterSolicitationGetsUnicastAdvertisement) {
  NdpRepr rs;
  rs.type = Icmpv6Type::RouterSolicit;
  rs.options.source_lladdr = mac(1);
  deliver(1, mac(1), guest_ll, all_routers_multicast(), rs);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].dst_mac, mac(1));
  EXPECT_EQ(sent[0].src, ndp.link_local());
  auto m = NdpMessage::parse(sent[0].icmp);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type(), Icmpv6Type::RouterAdvert);
  EXPECT_EQ(m->ra_flags(), kRaFlagOther);
  EXPECT_EQ(m->router_lifetime(), NdpServer::kRouterLifetimeS);
  auto prefix = NdpPrefixInfo::parse(m->find(ndp_opt::kPrefixInfo)->data);
  ASSERT_TRUE(prefix);
  EXPECT_EQ(prefix->prefix, a6("fec0::"));
  EXPECT_EQ(prefix->flags, kPrefixFlagOnLink | kPrefixFlagAuto);
  auto rdnss = NdpRdnssView::parse(m->find(ndp_opt::kRdnss)->data);
  ASSERT_TRUE(rdnss);
  EXPECT_EQ(rdnss->at(0), a6("fec0::3"));
  EXPECT_TRUE(m->find(ndp_opt::kDnssl));
  EXPECT_EQ(load_be32(m->find(ndp_opt::kMtu)->data, 2), 1500u);
}

TEST_F(Ndp, WithoutNatAdvertisementsOfferNoRouteAndNoDns) {
  Ipv6Settings s = settings();
  s.router = false;
  s.announce_dns = false;
  NdpServer quiet{loop, out, table, ctr, s};
  solicit_router(quiet);
  ASSERT_EQ(sent.size(), 1u);
  auto m = NdpMessage::parse(sent[0].icmp);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type(), Icmpv6Type::RouterAdvert);
  EXPECT_EQ(m->router_lifetime(), 0);  // not a default router
  EXPECT_TRUE(m->find(ndp_opt::kPrefixInfo));  // addresses still come from the prefix
  EXPECT_FALSE(m->find(ndp_opt::kRdnss));
  EXPECT_FALSE(m->find(ndp_opt::kDnssl));
}

TEST_F(Ndp, RaOffSendsNoAdvertisementsButStillAnswersNeighbourSolicitations) {
  Ipv6Settings s = settings();
  s.advertise = false;
  NdpServer silent{loop, out, table, ctr, s};
  solicit_router(silent);
  EXPECT_TRUE(sent.empty());
  deliver_to(silent, solicited_node(a6("fec0::2")), ns(a6("fec0::2"), mac(1)));
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(NdpMessage::parse(sent[0].icmp)->type(), Icmpv6Type::NeighborAdvert);
}

TEST_F(Ndp, SolicitationsFromUnspecifiedAreAnsweredToAllNodesAtMostEvery3s) {
  NdpRepr rs;
  rs.type = Icmpv6Type::RouterSolicit;
  for (int i = 0; i < 10; ++i) deliver(1, mac(1), Ipv6Addr{}, all_routers_multicast(), rs);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].dst, all_nodes_multicast());
}

TEST_F(Ndp, AdvertisementLearnsTheGuest) {
  deliver(1, mac(1), a6("fec0::5054:ff:fe12:3401"), all_nodes_multicast(),
          na(a6("fec0::5054:ff:fe12:3401"), mac(1)));
  ASSERT_NE(table.mac_of(IpAddr(a6("fec0::5054:ff:fe12:3401"))), nullptr);
  EXPECT_EQ(*table.mac_of(IpAddr(a6("fec0::5054:ff:fe12:3401"))), mac(1));
}

TEST_F(Ndp, AdvertisementForAnotherGuestsAddressFromAnotherPortIsDropped) {
  const Ipv6Addr victim = a6("fec0::5054:ff:fe12:3401");
  deliver(1, mac(1), victim, all_nodes_multicast(), na(victim, mac(1)));
  const auto before = ctr.drop_spoofed;
  // The attacker speaks from its own link-local address, announcing the victim's.
  deliver(2, mac(2), link_local_from_mac(mac(2)), all_nodes_multicast(), na(victim, mac(2)));
  EXPECT_EQ(ctr.drop_spoofed, before + 1);
  EXPECT_EQ(*table.mac_of(IpAddr(victim)), mac(1));
  EXPECT_EQ(table.port_of(IpAddr(victim)), 1u);
  // Nor from the victim's address as source.
  deliver(2, mac(2), victim, all_nodes_multicast(), na(victim, mac(2)));
  EXPECT_EQ(ctr.drop_spoofed, before + 2);
  EXPECT_EQ(table.port_of(IpAddr(victim)), 1u);
}

TEST_F(Ndp, LinkLayerOptionNamingAnotherMacIsDropped) {
  deliver(1, mac(1), guest_ll, all_nodes_multicast(), na(guest_ll, mac(7)));
  EXPECT_EQ(ctr.drop_spoofed, 1u);
  deliver(1, mac(1), guest_ll, solicited_node(a6("fec0::2")), ns(a6("fec0::2"), mac(7)));
  EXPECT_EQ(ctr.drop_spoofed, 2u);
  EXPECT_TRUE(sent.empty());
}

TEST_F(Ndp, GuestClaimingGatewayAddressIsDropped) {
  deliver(1, mac(1), guest_ll, all_nodes_multicast(), na(a6("fec0::2"), mac(1)));
  EXPECT_EQ(ctr.drop_spoofed, 1u);
  EXPECT_EQ(table.mac_of(IpAddr(a6("fec0::2"))), nullptr);
  // Nor as a source address.
  deliver(1, mac(1), a6("fec0::3"), all_nodes_multicast(), na(a6("fec0::3"), mac(1)));
  EXPECT_EQ(ctr.drop_spoofed, 2u);
}

TEST_F(Ndp, SolicitedAdvertisementToMulticastIsInvalid) {
  deliver(1, mac(1), guest_ll, all_nodes_multicast(), na(guest_ll, mac(1), kNaFlagSolicited));
  EXPECT_EQ(ctr.drop_ndp_invalid, 1u);
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(Ndp, GuestRouterAdvertisementsAreCountedAndIgnored) {
  NdpRepr ra;
  ra.type = Icmpv6Type::RouterAdvert;
  ra.router_lifetime = 1800;
  deliver(1, mac(1), guest_ll, all_nodes_multicast(), ra);
  EXPECT_EQ(ctr.ndp_guest_router_msgs, 1u);
  EXPECT_TRUE(sent.empty());
}

TEST_F(Ndp, SolicitIsMulticastToSolicitedNodeGroupAndRateLimited) {
  ndp.solicit(a6("fec0::5054:ff:fe12:3401"));
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].dst, a6("ff02::1:ff12:3401"));
  EXPECT_EQ(sent[0].dst_mac, (MacAddr{{0x33, 0x33, 0xff, 0x12, 0x34, 0x01}}));
  EXPECT_EQ(sent[0].src, a6("fec0::2"));
  EXPECT_EQ(NdpMessage::parse(sent[0].icmp)->source_lladdr(), kGwMac);
  for (int i = 0; i < 200; ++i) ndp.solicit(a6("fec0::5054:ff:fe12:3401"));
  EXPECT_EQ(sent.size(), NdpServer::kMaxSolicitsPerSecond);
}

TEST_F(Ndp, ListensToItsGroups) {
  EXPECT_TRUE(ndp.listens_to(ipv6_multicast_mac(all_nodes_multicast())));
  EXPECT_TRUE(ndp.listens_to(ipv6_multicast_mac(solicited_node(a6("fec0::2")))));
  EXPECT_TRUE(ndp.listens_to(ipv6_multicast_mac(a6("ff02::1:2"))));
  EXPECT_FALSE(ndp.listens_to(ipv6_multicast_mac(solicited_node(a6("fec0::99")))));
}

TEST(NeighV6, OnlyLinkLocalAndPrefixAddressesExceptTheGatewaysAreGuests) {
  NatConfig cfg;
  NatCounters ctr;
  NeighTable t{cfg, ctr, 300 * kSeconds};
  const Nanos now = 1000 * kSeconds;
  t.set_gateway_link_local(a6("fe80::1"));
  for (auto s : {"fec0::2", "fec0::3", "fe80::1", "fec0::", "ff02::1", "::", "2001:db8::1", "fec0:0:0:1::5", "fe80:1::1"}) {
    EXPECT_EQ(t.check_source(1, mac(1), IpAddr(a6(s)), now), NeighTable::Verdict::Spoofed) << s;
  }
  EXPECT_EQ(t.check_source(1, mac(1), IpAddr(a6("fec0::10")), now), NeighTable::Verdict::Ok);
  EXPECT_EQ(t.check_source(1, mac(1), IpAddr(a6("fe80::10")), now), NeighTable::Verdict::Ok);
  cfg.ipv6 = false;
  EXPECT_EQ(t.check_source(1, mac(1), IpAddr(a6("fec0::11")), now), NeighTable::Verdict::Spoofed);
}

TEST(NeighV6, Ipv6ClaimsHaveTheirOwnPerGuestLimit) {
  NatConfig cfg;
  NatCounters ctr;
  NeighTable t{cfg, ctr, 300 * kSeconds};
  const Nanos now = 1000 * kSeconds;
  for (std::uint8_t i = 0; i < NeighTable::kMaxStaticPerGuest; ++i) {
    EXPECT_EQ(t.check_source(1, mac(1), IpAddr(Ipv4Addr{{10, 0, 2, static_cast<std::uint8_t>(20 + i)}}), now),
              NeighTable::Verdict::Ok);
  }
  Ipv6Addr a = a6("fec0::100");
  for (std::uint8_t i = 0; i < NeighTable::kMaxStaticV6PerGuest; ++i) {
    a.octets[15] = static_cast<std::uint8_t>(i + 1);
    EXPECT_EQ(t.check_source(1, mac(1), IpAddr(a), now), NeighTable::Verdict::Ok);
  }
  a.octets[15] = 99;
  EXPECT_EQ(t.check_source(1, mac(1), IpAddr(a), now), NeighTable::Verdict::OverLimit);
}

}  // namespace
}  // namespace vnet::nat
