// The NAT's DHCPv6 server (nat/dhcp6): messages as a client sends them,
// replies as the switch would carry them.
#include "nat/dhcp6.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "nat/neigh.hpp"
#include "wire/dhcpv6.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv6.hpp"
#include "wire/udp.hpp"

namespace vnet::nat {
namespace {

using namespace vnet::wire;

Ipv6Addr a6(std::string_view s) { return *Ipv6Addr::parse(s); }
MacAddr mac(std::uint8_t last) { return MacAddr{{0x52, 0x54, 0x00, 0x12, 0x34, last}}; }
const MacAddr kGwMac{{0x52, 0x55, 10, 0, 2, 2}};

struct Reply {
  MacAddr dst_mac;
  Ipv6Addr dst;
  std::vector<std::uint8_t> msg;
};

class Dhcp6 : public ::testing::Test {
 protected:
  Dhcp6() {
    cfg.max_leases_per_port = 2;
    Ipv6Settings s;
    s.prefix = a6("fec0::");
    s.gateway = a6("fec0::2");
    s.dns = a6("fec0::3");
    s.mac = kGwMac;
    s.domain = "vnet.test";
    server = std::make_unique<Dhcp6Server>(out, &table, ctr, cfg, s);
  }

  void capture(Bytes frame) {
    auto eth = EthernetFrame::parse(frame);
    auto ip = Ipv6Packet::parse(eth->payload());
    ASSERT_TRUE(ip);
    auto udp = UdpPacket::parse(ip->payload());
    ASSERT_TRUE(udp);
    EXPECT_TRUE(udp->verify_checksum(IpAddr(ip->src()), IpAddr(ip->dst())));
    EXPECT_EQ(udp->src_port(), 547);
    EXPECT_EQ(udp->dst_port(), 546);
    replies.push_back({eth->dst(), ip->dst(), {udp->payload().begin(), udp->payload().end()}});
  }

  // A client message: type, DUID byte, IAIDs, optional server id.
  std::vector<std::uint8_t> message(Dhcp6MessageType type, std::uint8_t duid, std::vector<std::uint32_t> iaids,
                                    Bytes server_id = {}, bool rapid = false) {
    std::vector<std::uint8_t> b(600);
    Dhcp6Writer w(MutBytes(b).subspan(8), type, 0x010203);
    const std::uint8_t id[] = {0, 3, 0, 1, 2, 0, 0, 0, 0, duid};
    w.option(dhcp6_opt::kClientId, id);
    if (!server_id.empty()) w.option(dhcp6_opt::kServerId, server_id);
    if (rapid) w.option(dhcp6_opt::kRapidCommit, {});
    for (auto iaid : iaids) {
      w.begin_ia_na(iaid, 0, 0);
      w.end();
    }
    const std::size_t len = w.finish();
    b.resize(8 + len);
    return b;
  }

  void send(PortId port, const MacAddr& m, std::vector<std::uint8_t> b) {
    const Ipv6Addr src = link_local_from_mac(m), dst = *Ipv6Addr::parse("ff02::1:2");
    UdpRepr u{546, 547, static_cast<std::uint16_t>(b.size() - 8)};
    u.emit(b, IpAddr(src), IpAddr(dst));
    server->on_message(port, m, src, dst, b);
  }

  Dhcp6Message last() {
    EXPECT_FALSE(replies.empty());
    auto m = Dhcp6Message::parse(replies.back().msg);
    EXPECT_TRUE(m);
    return *m;
  }

  std::vector<Ipv6Addr> addresses(const Dhcp6Message& m) {
    std::vector<Ipv6Addr> found;
    m.for_each_ia_na([&](const Dhcp6IaNa& ia) {
      if (auto a = ia.first_addr()) found.push_back(a->addr);
    });
    return found;
  }

  std::vector<std::uint8_t> server_id() {
    auto id = last().server_id();
    return {id.begin(), id.end()};
  }

  EventLoop loop;
  NatConfig cfg;
  NatCounters ctr;
  NeighTable table{cfg, ctr, 300 * kSeconds};
  std::vector<Reply> replies;
  Ipv6ControlOut out{kGwMac, [this](Bytes f) { capture(f); }};
  std::unique_ptr<Dhcp6Server> server;
};

TEST_F(Dhcp6, SolicitAdvertiseRequestReply) {
  send(1, mac(1), message(Dhcp6MessageType::Solicit, 1, {7}));
  auto adv = last();
  EXPECT_EQ(adv.type(), Dhcp6MessageType::Advertise);
  EXPECT_EQ(adv.xid(), 0x010203u);
  EXPECT_EQ(replies.back().dst_mac, mac(1));
  EXPECT_EQ(replies.back().dst, link_local_from_mac(mac(1)));
  auto offered = addresses(adv);
  ASSERT_EQ(offered.size(), 1u);
  EXPECT_EQ(offered[0], a6("fec0::1000"));
  EXPECT_TRUE(adv.find(dhcp6_opt::kDnsServers));
  EXPECT_EQ(table.mac_of(IpAddr(offered[0])), nullptr);  // only advertised
  const auto sid = server_id();
  send(1, mac(1), message(Dhcp6MessageType::Request, 1, {7}, sid));
  auto reply = last();
  EXPECT_EQ(reply.type(), Dhcp6MessageType::Reply);
  EXPECT_EQ(addresses(reply), offered);
  ASSERT_NE(table.mac_of(IpAddr(offered[0])), nullptr);
  EXPECT_EQ(*table.mac_of(IpAddr(offered[0])), mac(1));
  auto st = server->status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0]["state"], "bound");
  EXPECT_EQ(st[0]["ip"], "fec0::1000");
  EXPECT_EQ(ctr.dhcp6_replies, 2u);
}

TEST_F(Dhcp6, RapidCommitRepliesAtOnce) {
  send(1, mac(1), message(Dhcp6MessageType::Solicit, 1, {7}, {}, true));
  auto reply = last();
  EXPECT_EQ(reply.type(), Dhcp6MessageType::Reply);
  EXPECT_TRUE(reply.rapid_commit());
  EXPECT_EQ(server->status()[0]["state"], "bound");
}

TEST_F(Dhcp6, InformationRequestGetsDnsAndSearchList) {
  send(1, mac(1), message(Dhcp6MessageType::InformationRequest, 1, {}));
  auto reply = last();
  EXPECT_EQ(reply.type(), Dhcp6MessageType::Reply);
  auto dns = reply.find(dhcp6_opt::kDnsServers);
  ASSERT_TRUE(dns);
  EXPECT_EQ(Ipv6Addr::from_bytes(dns->data), a6("fec0::3"));
  EXPECT_TRUE(reply.find(dhcp6_opt::kDomainList));
  EXPECT_TRUE(addresses(reply).empty());
  EXPECT_TRUE(server->status().empty());
}

TEST_F(Dhcp6, PortLimitRefusesFurtherAddresses) {
  send(1, mac(1), message(Dhcp6MessageType::Solicit, 1, {1, 2, 3}, {}, true));
  EXPECT_EQ(addresses(last()).size(), 2u);
  EXPECT_EQ(ctr.dhcp6_port_limit, 1u);
  // Another DUID on the same port: refused too; another port: served.
  send(1, mac(1), message(Dhcp6MessageType::Solicit, 2, {1}, {}, true));
  EXPECT_TRUE(addresses(last()).empty());
  send(2, mac(2), message(Dhcp6MessageType::Solicit, 3, {1}, {}, true));
  EXPECT_EQ(addresses(last()).size(), 1u);
}

TEST_F(Dhcp6, AnotherGuestCannotTakeOverABinding) {
  send(1, mac(1), message(Dhcp6MessageType::Solicit, 1, {7}, {}, true));
  const auto addr = addresses(last()).at(0);
  const auto sid = server_id();
  send(2, mac(2), message(Dhcp6MessageType::Request, 1, {7}, sid));
  EXPECT_TRUE(addresses(last()).empty());
  EXPECT_EQ(ctr.drop_spoofed, 1u);
  EXPECT_EQ(table.port_of(IpAddr(addr)), 1u);
}

TEST_F(Dhcp6, ReleaseFreesTheAddress) {
  send(1, mac(1), message(Dhcp6MessageType::Solicit, 1, {7}, {}, true));
  const auto addr = addresses(last()).at(0);
  const auto sid = server_id();
  send(1, mac(1), message(Dhcp6MessageType::Release, 1, {7}, sid));
  EXPECT_EQ(last().type(), Dhcp6MessageType::Reply);
  EXPECT_TRUE(server->status().empty());
  EXPECT_EQ(table.mac_of(IpAddr(addr)), nullptr);
}

TEST_F(Dhcp6, RequestForAnotherServerOrWithoutClientIdIsIgnored) {
  const std::uint8_t other[] = {0, 3, 0, 1, 1, 2, 3, 4, 5, 6};
  send(1, mac(1), message(Dhcp6MessageType::Request, 1, {7}, other));
  EXPECT_TRUE(replies.empty());
  std::vector<std::uint8_t> bare = {0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1};  // Solicit, no options
  send(1, mac(1), bare);
  EXPECT_TRUE(replies.empty());
}

TEST_F(Dhcp6, MalformedMessagesAreCounted) {
  auto b = message(Dhcp6MessageType::Solicit, 1, {7});
  b[8 + 4 + 3] = 0xff;  // client id length past the end
  send(1, mac(1), b);
  EXPECT_TRUE(replies.empty());
  EXPECT_EQ(ctr.drop_malformed, 1u);
}

}  // namespace
}  // namespace vnet::nat
