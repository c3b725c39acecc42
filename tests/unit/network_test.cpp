// Forwarding rules of the switch and hub, with ports that record what the
// network hands them (the transports have their own tests).
#include "fabric/network.hpp"

#include <gtest/gtest.h>

#include <bitset>
#include <vector>

#include "support/recording_port.hpp"

namespace vnet {
namespace {

using test_support::RecordingPort;

std::vector<std::uint8_t> frame(std::uint8_t dst_last, std::uint8_t src_last, std::size_t len = 60,
                                bool broadcast = false) {
  std::vector<std::uint8_t> f(len, 0);
  std::uint8_t dst[6] = {0x52, 0x54, 0, 0, 0, dst_last};
  std::uint8_t src[6] = {0x52, 0x54, 0, 0, 0, src_last};
  for (int i = 0; i < 6; ++i) {
    f[i] = broadcast ? 0xff : dst[i];
    f[6 + i] = src[i];
  }
  f[12] = 0x08;  // IPv4
  return f;
}

class NetworkTest : public ::testing::Test {
 protected:
  EventLoop loop;
  std::unique_ptr<Network> net;
  std::vector<RecordingPort*> ports;

  void make(NetworkOptions o, int n) {
    net = std::make_unique<Network>(loop, "t", o);
    for (int i = 0; i < n; ++i) {
      auto p = std::make_unique<RecordingPort>(loop, *net, net->next_port_id());
      ports.push_back(p.get());
      net->add_port(std::move(p));
    }
  }
  std::size_t total_sent() const {
    std::size_t n = 0;
    for (auto* p : ports) n += p->sent.size();
    return n;
  }
};

TEST_F(NetworkTest, SwitchFloodsUnknownThenForwardsLearned) {
  make({}, 3);
  ports[0]->inject(frame(2, 1));  // to unknown :02
  EXPECT_EQ(ports[0]->sent.size(), 0u) << "never back out of the ingress port";
  EXPECT_EQ(ports[1]->sent.size(), 1u);
  EXPECT_EQ(ports[2]->sent.size(), 1u);
  ports[1]->inject(frame(1, 2));  // :02 answers :01, which is learned on port 1
  EXPECT_EQ(ports[0]->sent.size(), 1u);
  EXPECT_EQ(ports[2]->sent.size(), 1u) << "known unicast is not flooded";
  ports[0]->inject(frame(2, 1));
  EXPECT_EQ(ports[1]->sent.size(), 2u);
  EXPECT_EQ(ports[2]->sent.size(), 1u);
  EXPECT_EQ(net->mac_table().size(), 2u);
}

TEST_F(NetworkTest, BroadcastGoesEverywhereElse) {
  make({}, 4);
  ports[2]->inject(frame(0, 3, 60, true));
  EXPECT_EQ(total_sent(), 3u);
  EXPECT_TRUE(ports[2]->sent.empty());
}

TEST_F(NetworkTest, HubRepeatsKnownUnicastToo) {
  NetworkOptions o;
  o.mode = NetworkMode::Hub;
  make(o, 3);
  ports[1]->inject(frame(1, 2));
  ports[0]->inject(frame(2, 1));
  EXPECT_EQ(ports[2]->sent.size(), 2u);
  EXPECT_TRUE(net->mac_table().empty());
}

TEST_F(NetworkTest, RuntOversizeAndGroupSourceAreDroppedAndCounted) {
  NetworkOptions o;
  o.mtu = 1500;
  make(o, 2);
  ports[0]->inject(std::vector<std::uint8_t>(13, 0));
  ports[0]->inject(frame(2, 1, 1519));
  auto bad_src = frame(2, 1);
  bad_src[6] = 0x01;  // multicast bit in the source
  ports[0]->inject(bad_src);
  ports[0]->inject(frame(2, 1, 1518));  // the largest allowed
  const auto& c = ports[0]->counters();
  EXPECT_EQ(c.drop_runt, 1u);
  EXPECT_EQ(c.drop_oversize, 1u);
  EXPECT_EQ(c.drop_malformed, 1u);
  EXPECT_EQ(c.rx_frames, 1u);
  EXPECT_EQ(ports[1]->sent.size(), 1u);
}

TEST_F(NetworkTest, MacMovesFollowTheSender) {
  make({}, 3);
  ports[0]->inject(frame(9, 1));
  ports[1]->inject(frame(9, 1));  // :01 now behind port 2
  ports[2]->inject(frame(1, 3));
  // Port 3's frame to :01 goes to port 2 only; port 1 saw just port 2's flood.
  EXPECT_EQ(ports[1]->sent.size(), 2u);
  EXPECT_EQ(ports[0]->sent.size(), 1u);
}

TEST_F(NetworkTest, OneMacOnTwoLivePortsIsReportedUntilOneGoes) {
  make({}, 3);
  ports[0]->inject(frame(9, 1));
  EXPECT_TRUE(net->duplicate_macs().empty());
  ports[1]->inject(frame(9, 1));
  ports[0]->inject(frame(9, 1));
  ASSERT_EQ(net->duplicate_macs().size(), 1u) << "one entry per MAC, however often it flaps";
  EXPECT_EQ(net->duplicate_macs()[0].times, 2u);
  EXPECT_EQ(net->duplicate_mac_events(), 2u);
  EXPECT_EQ(ports[1]->counters().mac_duplicate, 1u);
  EXPECT_EQ(ports[0]->counters().mac_duplicate, 1u);
  net->remove_port(ports[1]->id());
  EXPECT_TRUE(net->duplicate_macs().empty());
  // A MAC whose old port is gone (a guest re-plugged) is no duplicate.
  ports[2]->inject(frame(9, 2));
  auto replacement = std::make_unique<RecordingPort>(loop, *net, net->next_port_id());
  auto* fresh = replacement.get();
  net->add_port(std::move(replacement));
  net->remove_port(ports[2]->id());
  fresh->inject(frame(9, 2));
  EXPECT_EQ(net->duplicate_mac_events(), 2u);
}

TEST_F(NetworkTest, PerPortMacLimit) {
  NetworkOptions o;
  o.macs_per_port = 2;
  make(o, 2);
  for (std::uint8_t m = 1; m <= 5; ++m) ports[0]->inject(frame(0xee, m));
  EXPECT_EQ(net->mac_table().size(), 2u);
  EXPECT_EQ(ports[0]->counters().mac_limit, 3u);
  EXPECT_EQ(ports[1]->sent.size(), 5u) << "frames from unlearned MACs are still forwarded";
}

TEST_F(NetworkTest, RemovingAPortForgetsItsMacs) {
  make({}, 2);
  ports[1]->inject(frame(1, 2));
  ASSERT_EQ(net->mac_table().size(), 1u);
  net->remove_port(ports[1]->id());
  ports.pop_back();
  EXPECT_TRUE(net->mac_table().empty());
}

TEST_F(NetworkTest, LinkDownCarriesNothing) {
  make({}, 2);
  ports[1]->set_link(false);
  ports[0]->inject(frame(2, 1));
  ports[1]->inject(frame(1, 2));
  EXPECT_TRUE(ports[1]->sent.empty());
  EXPECT_EQ(ports[1]->counters().drop_down, 2u);
  EXPECT_TRUE(ports[0]->sent.empty());
}

TEST_F(NetworkTest, VlanMembership) {
  make({}, 4);
  ports[0]->set_vlan(10);
  ports[1]->set_vlan(10);
  ports[2]->set_vlan(20);  // ports[3] is a trunk (VLAN 0)
  ports[0]->inject(frame(0, 1, 60, true));
  EXPECT_EQ(ports[1]->sent.size(), 1u);
  EXPECT_EQ(ports[2]->sent.size(), 0u);
  EXPECT_EQ(ports[3]->sent.size(), 1u);
  auto tagged = frame(0, 3, 64, true);  // tagged 20 arriving on a VLAN 10 port
  tagged.insert(tagged.begin() + 12, {0x81, 0x00, 0x00, 20});
  ports[1]->inject(tagged);
  EXPECT_EQ(ports[1]->counters().drop_vlan, 1u);
}

std::vector<std::uint8_t> tag(std::vector<std::uint8_t> f, std::uint16_t vid) {
  f.insert(f.begin() + 12, {0x81, 0x00, static_cast<std::uint8_t>(vid >> 8), static_cast<std::uint8_t>(vid)});
  return f;
}

std::bitset<4096> vlans(std::initializer_list<int> ids) {
  std::bitset<4096> b;
  for (int v : ids) b.set(v);
  return b;
}

TEST_F(NetworkTest, AccessToTrunkPushesTheTag) {
  make({}, 3);
  ports[0]->set_vlan(10);
  ports[1]->set_vlan(20);
  ports[2]->set_vlan_config(VlanConfig::trunk(vlans({10, 20})));
  const auto plain = frame(0, 1, 60, true);
  ports[0]->inject(plain);
  ASSERT_EQ(ports[2]->sent.size(), 1u);
  EXPECT_EQ(ports[2]->sent[0], tag(plain, 10));
  EXPECT_TRUE(ports[1]->sent.empty());
  ports[1]->inject(frame(0, 2, 60, true));
  ASSERT_EQ(ports[2]->sent.size(), 2u);
  EXPECT_EQ(ports[2]->sent[1], tag(frame(0, 2, 60, true), 20));
}

TEST_F(NetworkTest, TrunkToAccessPopsTheTag) {
  make({}, 3);
  ports[0]->set_vlan(10);
  ports[1]->set_vlan(20);
  ports[2]->set_vlan_config(VlanConfig::trunk(vlans({10, 20})));
  const auto plain = frame(0, 3, 60, true);
  ports[2]->inject(tag(plain, 20));
  ASSERT_EQ(ports[1]->sent.size(), 1u);
  EXPECT_EQ(ports[1]->sent[0], plain);
  EXPECT_TRUE(ports[0]->sent.empty());
}

TEST_F(NetworkTest, TrunkDropsVlansItDoesNotCarryAndUntaggedWithoutNative) {
  make({}, 2);
  ports[0]->set_vlan(30);
  ports[1]->set_vlan_config(VlanConfig::trunk(vlans({10})));
  ports[1]->inject(tag(frame(0, 2, 60, true), 30));
  ports[1]->inject(frame(0, 2, 60, true));
  EXPECT_EQ(ports[1]->counters().drop_vlan, 2u);
  EXPECT_TRUE(ports[0]->sent.empty());
  ports[0]->inject(frame(0, 1, 60, true));  // VLAN 30 is not on the trunk
  EXPECT_TRUE(ports[1]->sent.empty());
}

TEST_F(NetworkTest, TrunkNativeVlanIsUntagged) {
  make({}, 2);
  ports[0]->set_vlan(5);
  ports[1]->set_vlan_config(VlanConfig::trunk(vlans({10}), 5));
  const auto plain = frame(0, 1, 60, true);
  ports[0]->inject(plain);
  ASSERT_EQ(ports[1]->sent.size(), 1u);
  EXPECT_EQ(ports[1]->sent[0], plain);
  ports[1]->inject(frame(0, 2, 60, true));
  EXPECT_EQ(ports[0]->sent.size(), 1u);
}

TEST_F(NetworkTest, AccessPortUntaggedDomainIsolatedFromVlans) {
  make({}, 3);
  ports[0]->set_vlan_config(VlanConfig::access(0));  // e.g. the NAT gateway
  ports[1]->set_vlan(10);
  ports[0]->inject(frame(0, 1, 60, true));
  ports[1]->inject(frame(0, 2, 60, true));
  EXPECT_TRUE(ports[1]->sent.empty());
  EXPECT_TRUE(ports[0]->sent.empty());
  // A plain port is in VLAN 0 untagged and sees VLAN 10 tagged.
  ASSERT_EQ(ports[2]->sent.size(), 2u);
  EXPECT_EQ(ports[2]->sent[0], frame(0, 1, 60, true));
  EXPECT_EQ(ports[2]->sent[1], tag(frame(0, 2, 60, true), 10));
}

TEST(VlanConfigText, TrunkLists) {
  EXPECT_EQ(VlanConfig::trunk(vlans({10, 11, 12, 20})).trunk_text(), "10-12,20");
  std::bitset<4096> all;
  all.set();
  EXPECT_EQ(VlanConfig::trunk(all).trunk_text(), "all");
  EXPECT_EQ(VlanConfig::make_plain().trunk_text(), "");
  EXPECT_EQ(VlanConfig::access(7).trunk_text(), "");
}

TEST_F(NetworkTest, MacsAgeOut) {
  NetworkOptions o;
  o.mac_aging = 20 * kMillis;
  make(o, 2);
  ports[0]->inject(frame(2, 1));
  ASSERT_EQ(net->mac_table().size(), 1u);
  Timer stop(loop, [this] { loop.stop(); });
  stop.arm_in(80 * kMillis);
  loop.run();
  EXPECT_TRUE(net->mac_table().empty());
}

}  // namespace
}  // namespace vnet
