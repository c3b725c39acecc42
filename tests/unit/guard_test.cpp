// The server guard (fabric/guard): which frames from a guest are taken for
// a router or DHCP server speaking, one case per shape, and the switch
// dropping them only while the network runs its own servers.
#include "fabric/guard.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "fabric/network.hpp"

namespace vnet {
namespace {

using wire::EtherType;

using Bytes = std::vector<std::uint8_t>;

// An IPv6 header (40 bytes) with next header `nh` and `payload` behind it.
Bytes ipv6(std::uint8_t nh, const Bytes& payload) {
  Bytes p(40, 0);
  p[0] = 0x60;
  p[4] = static_cast<std::uint8_t>(payload.size() >> 8);
  p[5] = static_cast<std::uint8_t>(payload.size());
  p[6] = nh;
  p[7] = 255;
  p[8] = 0xfe, p[9] = 0x80, p[23] = 1;   // fe80::1
  p[24] = 0xff, p[25] = 0x02, p[39] = 1; // ff02::1
  p.insert(p.end(), payload.begin(), payload.end());
  return p;
}

Bytes icmpv6(std::uint8_t type) { return {type, 0, 0, 0, 0, 0, 0, 0}; }
Bytes udp(std::uint16_t sport, std::uint16_t dport) {
  return {static_cast<std::uint8_t>(sport >> 8), static_cast<std::uint8_t>(sport), static_cast<std::uint8_t>(dport >> 8),
          static_cast<std::uint8_t>(dport), 0, 8, 0, 0};
}
// An extension header of 8 bytes: next header, length 0, padding.
Bytes ext(std::uint8_t next, const Bytes& rest) {
  Bytes h = {next, 0, 1, 4, 0, 0, 0, 0};  // PadN over the 6 option bytes
  h.insert(h.end(), rest.begin(), rest.end());
  return h;
}
Bytes fragment(std::uint8_t next, std::uint16_t offset_units, bool more, const Bytes& rest) {
  const std::uint16_t field = static_cast<std::uint16_t>(offset_units << 3 | (more ? 1 : 0));
  Bytes h = {next, 0, static_cast<std::uint8_t>(field >> 8), static_cast<std::uint8_t>(field), 0, 0, 0, 7};
  h.insert(h.end(), rest.begin(), rest.end());
  return h;
}
Bytes ipv4_udp(std::uint16_t sport, std::uint16_t dport, std::uint16_t frag_field = 0) {
  Bytes p = {0x45, 0, 0, 28, 0, 1, static_cast<std::uint8_t>(frag_field >> 8), static_cast<std::uint8_t>(frag_field),
             64, 17, 0, 0, 10, 0, 2, 99, 255, 255, 255, 255};
  Bytes u = udp(sport, dport);
  p.insert(p.end(), u.begin(), u.end());
  return p;
}

constexpr std::uint8_t kHopByHop = 0, kDestOpts = 60, kFragment = 44, kIcmpv6 = 58, kUdp = 17, kTcp = 6;

bool server(EtherType t, const Bytes& b) { return is_server_message(t, b); }

TEST(ServerGuard, RouterAdvertisementAndRedirectAreServerMessages) {
  EXPECT_TRUE(server(EtherType::Ipv6, ipv6(kIcmpv6, icmpv6(134))));
  EXPECT_TRUE(server(EtherType::Ipv6, ipv6(kIcmpv6, icmpv6(137))));
}

TEST(ServerGuard, GuestNdpAndEchoPass) {
  for (std::uint8_t type : {128, 129, 133, 135, 136}) EXPECT_FALSE(server(EtherType::Ipv6, ipv6(kIcmpv6, icmpv6(type))));
}

TEST(ServerGuard, Dhcp6ServerMessagesAreCaughtClientOnesPass) {
  EXPECT_TRUE(server(EtherType::Ipv6, ipv6(kUdp, udp(547, 546))));
  EXPECT_FALSE(server(EtherType::Ipv6, ipv6(kUdp, udp(546, 547))));
  EXPECT_FALSE(server(EtherType::Ipv6, ipv6(kTcp, udp(547, 546))));  // TCP from port 547 is no DHCPv6
}

TEST(ServerGuard, DhcpServerMessagesAreCaughtClientOnesPass) {
  EXPECT_TRUE(server(EtherType::Ipv4, ipv4_udp(67, 68)));
  EXPECT_FALSE(server(EtherType::Ipv4, ipv4_udp(68, 67)));
  EXPECT_FALSE(server(EtherType::Ipv4, ipv4_udp(67, 68, 0x0004)));  // a later fragment has no UDP header
}

TEST(ServerGuard, AdvertisementBehindExtensionHeadersIsFound) {
  EXPECT_TRUE(server(EtherType::Ipv6, ipv6(kHopByHop, ext(kIcmpv6, icmpv6(134)))));
  EXPECT_TRUE(server(EtherType::Ipv6, ipv6(kDestOpts, ext(kIcmpv6, icmpv6(134)))));
  EXPECT_TRUE(server(EtherType::Ipv6, ipv6(kFragment, fragment(kIcmpv6, 0, true, icmpv6(134)))));
}

TEST(ServerGuard, FirstFragmentWithoutTheUpperLayerHeaderIsCaught) {
  // RFC 7112: the whole header chain must be in the first fragment.
  EXPECT_TRUE(server(EtherType::Ipv6, ipv6(kFragment, fragment(kIcmpv6, 0, true, {}))));
  EXPECT_TRUE(server(EtherType::Ipv6, ipv6(kFragment, fragment(kUdp, 0, true, {0x02}))));
  EXPECT_FALSE(server(EtherType::Ipv6, ipv6(kFragment, fragment(kIcmpv6, 1, false, icmpv6(134)))))
      << "a later fragment carries no header";
}

TEST(ServerGuard, UnwalkableHeaderChainIsCaught) {
  Bytes chain = icmpv6(134);
  for (int i = 0; i < 9; ++i) chain = ext(kDestOpts, chain);  // one more than the walk allows
  chain[0] = kDestOpts;
  EXPECT_TRUE(server(EtherType::Ipv6, ipv6(kDestOpts, chain)));
  Bytes truncated = ipv6(kHopByHop, ext(kIcmpv6, icmpv6(134)));
  truncated.resize(44);
  truncated[5] = 4;  // payload length matches what is left: the header runs past it
  EXPECT_TRUE(server(EtherType::Ipv6, truncated));
}

TEST(ServerGuard, OtherTrafficAndBrokenPacketsPass) {
  EXPECT_FALSE(server(EtherType::Arp, Bytes(28, 0)));
  EXPECT_FALSE(server(EtherType::Ipv6, ipv6(kTcp, Bytes(20, 0))));
  EXPECT_FALSE(server(EtherType::Ipv6, Bytes(10, 0x60)));  // not even an IPv6 header: guests drop it
  EXPECT_FALSE(server(EtherType::Ipv4, Bytes(10, 0x45)));
  EXPECT_FALSE(server(EtherType::Ipv6, ipv6(kIcmpv6, {})));  // no ICMPv6 header at all, unfragmented
}

// The switch: a guard only while a port runs the network's servers.
class Recorder : public Port {
 public:
  Recorder(EventLoop& loop, Network& net, PortId id, bool server) : Port(loop, net, id), server_(server) {}
  std::string kind() const override { return "test"; }
  bool runs_network_servers() const override { return server_; }
  void inject(const Bytes& f) { from_peer(f); }
  std::size_t received = 0;

 protected:
  void send_to_peer(wire::Bytes) override { received++; }

 private:
  bool server_;
};

Bytes frame_of(std::uint8_t src_last, const Bytes& l3) {
  Bytes f = {0x33, 0x33, 0, 0, 0, 1, 0x52, 0x54, 0, 0, 0, src_last, 0x86, 0xdd};
  f.insert(f.end(), l3.begin(), l3.end());
  if (f.size() < 60) f.resize(60, 0);
  return f;
}

TEST(ServerGuard, SwitchDropsGuestAdvertisementsOnlyBesideAServerPort) {
  EventLoop loop;
  Network net(loop, "t", {});
  auto add = [&](bool server) {
    auto p = std::make_unique<Recorder>(loop, net, net.next_port_id(), server);
    Recorder* raw = p.get();
    net.add_port(std::move(p));
    return raw;
  };
  Recorder* a = add(false);
  Recorder* b = add(false);
  const Bytes ra = frame_of(1, ipv6(kIcmpv6, icmpv6(134)));
  a->inject(ra);
  EXPECT_EQ(b->received, 1u) << "no servers of vnet's here: a plain switch carries everything";
  Recorder* gw = add(true);
  a->inject(ra);
  EXPECT_EQ(b->received, 1u);
  EXPECT_EQ(gw->received, 0u) << "dropped at ingress, for every port";
  EXPECT_EQ(a->counters().drop_guard, 1u);
  a->inject(frame_of(1, ipv6(kIcmpv6, icmpv6(135))));  // a neighbour solicitation still goes
  EXPECT_EQ(b->received, 2u);
  EXPECT_EQ(gw->received, 1u);
  gw->inject(frame_of(9, ipv6(kIcmpv6, icmpv6(134))));  // the gateway's own RA
  EXPECT_EQ(a->received, 1u);
  EXPECT_EQ(b->received, 3u);
  net.remove_port(gw->id());
  a->inject(ra);
  EXPECT_EQ(b->received, 4u) << "the guard goes with the server";
}

}  // namespace
}  // namespace vnet
