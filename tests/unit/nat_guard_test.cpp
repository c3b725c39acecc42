// Guest identity (nat/neigh), the forwarding policy (nat/fwd) and the
// gateway that applies both, driven through a real Network with ports that
// record what they are handed.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "fabric/network.hpp"
#include "nat/fwd.hpp"
#include "nat/gateway.hpp"
#include "nat/neigh.hpp"
#include "nat/udp.hpp"
#include "nat_frames.hpp"

namespace vnet::nat {
namespace {

using namespace vnet::wire;
using namespace vnet::testing;

Ipv4Addr ip(std::uint8_t last) { return Ipv4Addr{{10, 0, 2, last}}; }
MacAddr mac(std::uint8_t last) { return MacAddr{{0x52, 0x54, 0x00, 0x12, 0x34, last}}; }
constexpr Nanos kAging = 300 * kSeconds;

// --- neighbour table ---

class Neigh : public ::testing::Test {
 protected:
  NatConfig cfg;
  NatCounters ctr;
  NeighTable table{cfg, ctr, kAging};
  Nanos now = 1000 * kSeconds;
};

TEST_F(Neigh, FirstUseOfFreeAddressBinds) {
  EXPECT_EQ(table.check_source(1, mac(1), ip(20), now), NeighTable::Verdict::Ok);
  ASSERT_NE(table.mac_of(ip(20)), nullptr);
  EXPECT_EQ(*table.mac_of(ip(20)), mac(1));
  EXPECT_EQ(table.port_of(ip(20)), 1u);
  EXPECT_EQ(table.check_source(1, mac(1), ip(20), now + kSeconds), NeighTable::Verdict::Ok);
}

TEST_F(Neigh, AddressOfAnotherGuestIsRefused) {
  table.check_source(1, mac(1), ip(20), now);
  // Another port, another MAC: spoofed.
  EXPECT_EQ(table.check_source(2, mac(2), ip(20), now), NeighTable::Verdict::Spoofed);
  // The same port but another MAC (two VMs behind one port): spoofed too.
  EXPECT_EQ(table.check_source(1, mac(2), ip(20), now), NeighTable::Verdict::Spoofed);
  EXPECT_EQ(ctr.drop_spoofed, 2u);
  EXPECT_EQ(*table.mac_of(ip(20)), mac(1));
  EXPECT_EQ(table.port_of(ip(20)), 1u);
}

TEST_F(Neigh, SameMacOnSecondPortIsCountedAndRefused) {
  table.check_source(1, mac(1), ip(20), now);
  EXPECT_EQ(table.check_source(2, mac(1), ip(20), now), NeighTable::Verdict::Spoofed);
  EXPECT_EQ(ctr.neigh_mac_conflict, 1u);
  EXPECT_EQ(table.port_of(ip(20)), 1u);
}

TEST_F(Neigh, SourcesOutsideTheNetworkOrItsOwnAreRefused) {
  for (Ipv4Addr a : {Ipv4Addr{{192, 168, 1, 1}}, Ipv4Addr{{127, 0, 0, 1}}, ip(0), ip(255), ip(2), ip(3),
                     Ipv4Addr::broadcast(), Ipv4Addr{}}) {
    EXPECT_EQ(table.check_source(1, mac(1), a, now), NeighTable::Verdict::Spoofed) << a.to_string();
  }
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(Neigh, BindingMovesAfterSilencePastAging) {
  table.check_source(1, mac(1), ip(20), now);
  EXPECT_EQ(table.check_source(2, mac(2), ip(20), now + kAging - kSeconds), NeighTable::Verdict::Spoofed);
  EXPECT_EQ(table.check_source(2, mac(2), ip(20), now + kAging), NeighTable::Verdict::Ok);
  EXPECT_EQ(table.port_of(ip(20)), 2u);
  EXPECT_EQ(table.check_source(1, mac(1), ip(20), now + kAging), NeighTable::Verdict::Spoofed);
}

TEST_F(Neigh, TrafficKeepsBindingFresh) {
  table.check_source(1, mac(1), ip(20), now);
  table.check_source(1, mac(1), ip(20), now + kAging - kSeconds);
  EXPECT_EQ(table.check_source(2, mac(2), ip(20), now + kAging + kSeconds), NeighTable::Verdict::Spoofed);
}

TEST_F(Neigh, LeaseMovesBinding) {
  table.check_source(1, mac(1), ip(20), now);
  table.on_lease(2, mac(2), ip(20), now);
  EXPECT_EQ(table.port_of(ip(20)), 2u);
  EXPECT_EQ(table.check_source(1, mac(1), ip(20), now), NeighTable::Verdict::Spoofed);
  EXPECT_TRUE(table.held_by_other(ip(20), 1, mac(1), now));
  EXPECT_FALSE(table.held_by_other(ip(20), 2, mac(2), now));
  table.on_release(1, mac(1), ip(20));  // not theirs: ignored
  EXPECT_EQ(table.port_of(ip(20)), 2u);
  table.on_release(2, mac(2), ip(20));
  EXPECT_EQ(table.mac_of(ip(20)), nullptr);
}

TEST_F(Neigh, StaticClaimsPerGuestAreCapped) {
  for (std::uint8_t i = 0; i < NeighTable::kMaxStaticPerGuest; ++i)
    EXPECT_EQ(table.check_source(1, mac(1), ip(20 + i), now), NeighTable::Verdict::Ok);
  EXPECT_EQ(table.check_source(1, mac(1), ip(40), now), NeighTable::Verdict::OverLimit);
  EXPECT_EQ(ctr.drop_neigh_limit, 1u);
  // A lease is not a claim by use: it still binds.
  table.on_lease(1, mac(1), ip(41), now);
  EXPECT_EQ(table.port_of(ip(41)), 1u);
  // Another guest is not affected.
  EXPECT_EQ(table.check_source(2, mac(2), ip(40), now), NeighTable::Verdict::Ok);
}

TEST_F(Neigh, PerPortCapHoldsAgainstRandomMacs) {
  cfg.net = Ipv4Cidr{{{10, 0, 0, 0}}, 8};
  std::uint32_t ok = 0;
  for (std::uint32_t i = 0; i < 1000; ++i) {
    const MacAddr m{{0x02, 0, 0, static_cast<std::uint8_t>(i >> 16), static_cast<std::uint8_t>(i >> 8),
                     static_cast<std::uint8_t>(i)}};
    ok += table.check_source(1, m, Ipv4Addr::from_u32(0x0a010000 + i), now) == NeighTable::Verdict::Ok;
  }
  EXPECT_EQ(ok, NeighTable::kMaxPerPort);
  EXPECT_EQ(table.size(), NeighTable::kMaxPerPort);
}

TEST_F(Neigh, SpoofedSourceFloodDoesNotGrowTable) {
  // Issue 7 item 9: 300k spoofed sources grew the old ARP cache by 12 MB.
  cfg.net = Ipv4Cidr{{{10, 0, 0, 0}}, 8};
  cfg.max_neighbours = 512;
  for (std::uint32_t i = 0; i < 300000; ++i) {
    const MacAddr m{{0x02, static_cast<std::uint8_t>(i >> 24), static_cast<std::uint8_t>(i >> 16),
                     static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i), 1}};
    table.check_source(1 + i % 64, m, Ipv4Addr::from_u32(0x0a000000 + i * 7 + 4), now);
    table.check_source(1, m, Ipv4Addr::from_u32(0xc0a80000 + i), now);  // outside
  }
  EXPECT_LE(table.size(), cfg.max_neighbours);
  EXPECT_LE(table.status().size(), NeighTable::kStatusLimit);
  table.expire(now + kAging);
  EXPECT_EQ(table.size(), 0u);
}

// --- forwarding policy ---

FwdDecision fwd(const NatConfig& c, IpProtocol p, Ipv4Addr dst, std::uint16_t port = 80) {
  return forward(c, p, IpAddr(dst), port);
}

TEST(Fwd, MartiansAreNeverTranslated) {
  NatConfig c;
  for (Ipv4Addr a : {Ipv4Addr{{0, 0, 0, 0}}, Ipv4Addr{{0, 1, 2, 3}}, Ipv4Addr{{127, 0, 0, 1}},
                     Ipv4Addr{{127, 1, 2, 3}}, Ipv4Addr{{169, 254, 1, 1}}, Ipv4Addr{{224, 0, 0, 1}},
                     Ipv4Addr{{239, 255, 255, 250}}, Ipv4Addr{{240, 0, 0, 1}}, Ipv4Addr::broadcast()}) {
    for (IpProtocol p : {IpProtocol::Tcp, IpProtocol::Udp, IpProtocol::Icmp}) {
      auto d = fwd(c, p, a);
      EXPECT_TRUE(d.refused()) << a.to_string();
      EXPECT_EQ(d.refusal, FwdRefusal::Martian) << a.to_string();
    }
  }
}

TEST(Fwd, Ipv6MartiansAreNeverTranslated) {
  for (const char* text : {"::", "::1", "fe80::1", "febf::1", "ff02::1", "ff0e::fb"}) {
    auto a = Ipv6Addr::parse(text);
    ASSERT_TRUE(a) << text;
    EXPECT_TRUE(is_martian(*a)) << text;
  }
  auto mapped = Ipv6Addr::parse("::ffff:198.51.100.10");
  ASSERT_TRUE(mapped);
  EXPECT_TRUE(is_martian(*mapped));
  auto global = Ipv6Addr::parse("2001:db8::1");
  ASSERT_TRUE(global);
  EXPECT_FALSE(is_martian(*global));
}

TEST(Fwd, GatewayIsHostLoopbackOnlyWhenAllowed) {
  NatConfig c;
  auto d = fwd(c, IpProtocol::Tcp, c.gateway, 22);
  EXPECT_EQ(d.kind, FwdKind::HostLoopback);
  EXPECT_EQ(host_target(d, 22).to_string(), "127.0.0.1:22");
  c.host_loopback = false;
  d = fwd(c, IpProtocol::Udp, c.gateway, 22);
  EXPECT_EQ(d.refusal, FwdRefusal::HostLoopback);
  c.host_loopback = true;
  c.restrict = true;
  EXPECT_EQ(fwd(c, IpProtocol::Tcp, c.gateway, 22).refusal, FwdRefusal::Restricted);
}

TEST(Fwd, DnsAddressServesOnlyPort53) {
  NatConfig c;
  c.restrict = true;  // the network's own DNS works under restrict
  EXPECT_EQ(fwd(c, IpProtocol::Udp, c.dns, 53).kind, FwdKind::DnsForwarder);
  EXPECT_EQ(fwd(c, IpProtocol::Tcp, c.dns, 53).kind, FwdKind::DnsForwarder);
  EXPECT_EQ(fwd(c, IpProtocol::Tcp, c.dns, 80).refusal, FwdRefusal::Restricted);
  EXPECT_EQ(fwd(c, IpProtocol::Icmp, c.dns, 0).refusal, FwdRefusal::Restricted);
}

TEST(Fwd, OutsideUnlessRestricted) {
  NatConfig c;
  const Ipv4Addr out{{198, 51, 100, 10}};
  auto d = fwd(c, IpProtocol::Tcp, out, 8080);
  EXPECT_EQ(d.kind, FwdKind::Outside);
  EXPECT_EQ(host_target(d, 8080).to_string(), "198.51.100.10:8080");
  EXPECT_EQ(fwd(c, IpProtocol::Tcp, ip(16)).refusal, FwdRefusal::Restricted);  // another guest
  c.restrict = true;
  EXPECT_EQ(fwd(c, IpProtocol::Udp, out).refusal, FwdRefusal::Restricted);
}

// --- the gateway on a network ---

class GuestPort : public Port {
 public:
  using Port::Port;
  std::string kind() const override { return "test"; }
  void inject(const Frame& f) { from_peer(f); }
  std::vector<Frame> got;

 protected:
  void send_to_peer(Bytes f) override { got.emplace_back(f.begin(), f.end()); }
};

class Gateway : public ::testing::Test {
 protected:
  EventLoop loop;
  std::unique_ptr<Network> net;
  NatGateway* gw = nullptr;
  GuestPort* a = nullptr;
  GuestPort* b = nullptr;

  void make(NatConfig cfg = {}) {
    NetworkOptions o;
    o.mode = NetworkMode::Nat;
    o.mtu = cfg.mtu;
    net = std::make_unique<Network>(loop, "nat", o);
    gw = static_cast<NatGateway*>(&net->add_port(std::make_unique<NatGateway>(loop, *net, net->next_port_id(), cfg)));
    a = static_cast<GuestPort*>(&net->add_port(std::make_unique<GuestPort>(loop, *net, net->next_port_id())));
    b = static_cast<GuestPort*>(&net->add_port(std::make_unique<GuestPort>(loop, *net, net->next_port_id())));
  }
  void SetUp() override { make(); }
  const NatCounters& ctr() { return gw->counters(); }

  // Echo replies the port received from the gateway.
  static int echo_replies(const GuestPort& p) {
    int n = 0;
    for (const auto& f : p.got) {
      auto eth = EthernetFrame::parse(f);
      if (!eth || eth->ethertype() != EtherType::Ipv4) continue;
      auto ipk = Ipv4Packet::parse(eth->payload());
      if (!ipk || ipk->protocol() != IpProtocol::Icmp) continue;
      auto icmp = Icmpv4Packet::parse(ipk->payload());
      n += icmp && icmp->type() == Icmpv4Type::EchoReply;
    }
    return n;
  }
};

TEST_F(Gateway, ArpReplyReentersTheSwitchToTheAsker) {
  a->inject(arp_frame(mac(1), ArpOp::Request, mac(1), ip(15), ip(2)));
  ASSERT_EQ(a->got.size(), 1u);  // the reply, sent from inside the gateway's ingress
  auto eth = EthernetFrame::parse(a->got[0]);
  ASSERT_TRUE(eth);
  EXPECT_EQ(eth->src(), kGatewayMac);
  EXPECT_EQ(eth->dst(), mac(1));
  EXPECT_TRUE(b->got.empty() || b->got.size() == 1u);  // b may see the flooded request only
  EXPECT_EQ(net->ingress_port(), 0u);
  EXPECT_EQ(ctr().arp_replies, 1u);
}

TEST_F(Gateway, SpoofedPingTakesNothing) {
  a->inject(ping_frame(mac(1), ip(15), ip(2)));
  EXPECT_EQ(echo_replies(*a), 1);
  // b forges a's address: no answer, no rebinding.
  b->inject(ping_frame(mac(2), ip(15), ip(2)));
  b->inject(arp_frame(mac(2), ArpOp::Reply, mac(2), ip(15), ip(2), kGatewayMac));
  EXPECT_EQ(echo_replies(*b), 0);
  EXPECT_EQ(ctr().drop_spoofed, 2u);
  ASSERT_NE(gw->guest_mac(ip(15)), nullptr);
  EXPECT_EQ(*gw->guest_mac(ip(15)), mac(1));
  // b forging a's MAC as well, from its own port, is still refused.
  b->inject(ping_frame(mac(1), ip(15), ip(2)));
  EXPECT_EQ(echo_replies(*b), 0);
  EXPECT_EQ(ctr().drop_spoofed, 3u);
  EXPECT_EQ(ctr().neigh_mac_conflict, 1u);
  // a is still served.
  a->inject(ping_frame(mac(1), ip(15), ip(2), 2));
  EXPECT_EQ(echo_replies(*a), 2);
}

TEST_F(Gateway, ArpSenderMacMustBeTheFramesSource) {
  a->inject(arp_frame(mac(1), ArpOp::Request, mac(9), ip(15), ip(2)));
  EXPECT_EQ(ctr().drop_spoofed, 1u);
  EXPECT_EQ(gw->guest_mac(ip(15)), nullptr);
}

TEST_F(Gateway, SourceOutsideTheNetworkIsDropped) {
  a->inject(ping_frame(mac(1), Ipv4Addr{{192, 168, 7, 7}}, ip(2)));
  a->inject(udp_frame(mac(1), Ipv4Addr{{8, 8, 8, 8}}, 1000, Ipv4Addr{{198, 51, 100, 10}}, 7, {1, 2, 3}));
  a->inject(ping_frame(mac(1), Ipv4Addr{}, ip(2)));  // 0.0.0.0 is for DHCP only
  EXPECT_EQ(echo_replies(*a), 0);
  EXPECT_EQ(ctr().drop_spoofed, 3u);
  EXPECT_EQ(gw->neighbours().size(), 0u);
  EXPECT_EQ(gw->udp().status().size(), 0u);
}

TEST_F(Gateway, MartianDestinationsRefused) {
  for (Ipv4Addr dst : {Ipv4Addr{{127, 0, 0, 1}}, Ipv4Addr{{127, 1, 2, 3}}, Ipv4Addr{{0, 0, 0, 0}},
                       Ipv4Addr{{169, 254, 0, 1}}, Ipv4Addr{{240, 0, 0, 1}}}) {
    a->inject(udp_frame(mac(1), ip(15), 1000, dst, 7, {1}));
    a->inject(tcp_syn_frame(mac(1), ip(15), 1000, dst, 7));
  }
  EXPECT_EQ(ctr().drop_martian, 10u);
  EXPECT_EQ(gw->udp().status().size(), 0u);
  EXPECT_EQ(ctr().tcp_flows, 0u);
}

TEST(GatewayPolicy, HostLoopbackOffRefusesGateway) {
  NatConfig cfg;
  cfg.host_loopback = false;
  EventLoop loop;
  NetworkOptions o;
  o.mode = NetworkMode::Nat;
  o.mtu = cfg.mtu;
  Network net(loop, "nat", o);
  net.add_port(std::make_unique<NatGateway>(loop, net, net.next_port_id(), cfg));
  auto& a = static_cast<GuestPort&>(net.add_port(std::make_unique<GuestPort>(loop, net, net.next_port_id())));
  a.inject(udp_frame(mac(1), ip(15), 1000, ip(2), 7, {1}));
  a.inject(tcp_syn_frame(mac(1), ip(15), 1000, ip(2), 7));
  auto* gw = static_cast<NatGateway*>(net.find_port(1));
  EXPECT_EQ(gw->counters().drop_host_loopback, 2u);
  EXPECT_EQ(gw->counters().tcp_flows, 0u);
  EXPECT_EQ(gw->udp().status().size(), 0u);
}

TEST_F(Gateway, ReplyRoomLeavesSpaceForTheIpHeader) {
  // A segment built in l4_buffer() plus the IPv4 header fits the MTU.
  EXPECT_EQ(gw->l4_buffer().size(), 1500u - 20u);
}

TEST_F(Gateway, DhcpChaddrMustBeTheSourceMac) {
  std::vector<std::uint8_t> dhcp(300, 0);
  dhcp[0] = 1;  // BOOTREQUEST
  dhcp[1] = 1;  // Ethernet
  dhcp[2] = 6;
  const MacAddr other = mac(9);
  std::copy(other.octets.begin(), other.octets.end(), dhcp.begin() + 28);
  const std::uint8_t cookie_and_opts[] = {99, 130, 83, 99, 53, 1, 1, 255};
  std::copy(std::begin(cookie_and_opts), std::end(cookie_and_opts), dhcp.begin() + 236);
  a->inject(udp_frame(mac(1), Ipv4Addr{}, 68, Ipv4Addr::broadcast(), 67, dhcp, MacAddr::broadcast()));
  EXPECT_EQ(ctr().dhcp_chaddr_mismatch, 1u);
  EXPECT_EQ(ctr().drop_spoofed, 0u);
}

TEST(NetworkIngress, DepthIsBounded) {
  // A port that answers every frame with a broadcast would recurse forever.
  class Echoer : public Port {
   public:
    using Port::Port;
    std::string kind() const override { return "echo"; }
    void inject(const Frame& f) { from_peer(f); }
    int depth_seen = 0;

   protected:
    void send_to_peer(Bytes f) override {
      depth_seen++;
      Frame copy(f.begin(), f.end());
      from_peer(copy);
    }
  };
  EventLoop loop;
  Network net(loop, "n", NetworkOptions{});
  auto& x = static_cast<Echoer&>(net.add_port(std::make_unique<Echoer>(loop, net, net.next_port_id())));
  auto& y = static_cast<Echoer&>(net.add_port(std::make_unique<Echoer>(loop, net, net.next_port_id())));
  Frame f(60, 0xff);
  f[6] = 0x02;  // unicast source
  x.inject(f);
  EXPECT_LE(x.depth_seen + y.depth_seen, Network::kMaxIngressDepth);
  EXPECT_EQ(x.counters().drop_loop + y.counters().drop_loop, 1u);
}

}  // namespace
}  // namespace vnet::nat
