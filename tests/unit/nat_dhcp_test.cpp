// DhcpServer driven through the fake guest side, which records what it sends.
#include "nat/dhcp.hpp"

#include <gtest/gtest.h>

#include <deque>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "support/fake_guest_io.hpp"
#include "wire/dhcp.hpp"

namespace vnet::nat {
namespace {

using namespace vnet::wire;
using Type = DhcpMessageType;

Ipv4Addr ip(std::uint8_t last) { return Ipv4Addr{{10, 0, 2, last}}; }
MacAddr mac(std::uint8_t last) { return MacAddr{{0x52, 0x54, 0x00, 0x12, 0x34, last}}; }

// The guests' MACs are known only where a test says so (io.macs).
struct DhcpGuestIo : testing::FakeGuestIo {
  DhcpGuestIo() { default_mac.reset(); }
};

// A client message under construction.
struct Msg {
  Type type;
  MacAddr chaddr;
  std::uint32_t xid = 0x1000;
  std::uint16_t flags = 0;
  Ipv4Addr ciaddr;
  std::vector<std::uint8_t> opts;

  Msg(Type t, MacAddr m) : type(t), chaddr(m) {}
  Msg& opt(std::uint8_t code, std::vector<std::uint8_t> v) {
    opts.push_back(code);
    opts.push_back(static_cast<std::uint8_t>(v.size()));
    opts.insert(opts.end(), v.begin(), v.end());
    return *this;
  }
  Msg& addr(std::uint8_t code, Ipv4Addr a) { return opt(code, {a.octets.begin(), a.octets.end()}); }
  Msg& requested(Ipv4Addr a) { return addr(dhcp_opt::kRequestedIp, a); }
  Msg& server(Ipv4Addr a) { return addr(dhcp_opt::kServerId, a); }
  Msg& client_id(const std::string& s) { return opt(dhcp_opt::kClientId, {s.begin(), s.end()}); }
  Msg& hostname(const std::string& s) { return opt(dhcp_opt::kHostname, {s.begin(), s.end()}); }
  Msg& ci(Ipv4Addr a) {
    ciaddr = a;
    return *this;
  }

  std::vector<std::uint8_t> bytes() const {
    std::vector<std::uint8_t> b(DhcpPacket::kOptionsOffset, 0);
    b[0] = 1;
    b[1] = 1;
    b[2] = 6;
    store_be32(b, 4, xid);
    store_be16(b, 10, flags);
    std::memcpy(b.data() + 12, ciaddr.octets.data(), 4);
    std::memcpy(b.data() + DhcpPacket::kChaddrOffset, chaddr.octets.data(), 6);
    store_be32(b, DhcpPacket::kCookieOffset, DhcpPacket::kMagicCookie);
    b.insert(b.end(), {dhcp_opt::kMessageType, 1, static_cast<std::uint8_t>(type)});
    b.insert(b.end(), opts.begin(), opts.end());
    b.push_back(dhcp_opt::kEnd);
    return b;
  }
};

class NatDhcp : public ::testing::Test {
 protected:
  DhcpGuestIo io;
  std::unique_ptr<DhcpServer> server;

  void SetUp() override { server = std::make_unique<DhcpServer>(io); }
  // Recreates the server after changing io.cfg.
  void restart() { server = std::make_unique<DhcpServer>(io); }

  // Every reply a test has seen, kept for the whole test: the views that
  // send() returns point into these.
  std::deque<std::vector<std::uint8_t>> replies;

  // Sends a message; returns the reply, if exactly one was sent.
  std::optional<DhcpPacket> send(const Msg& m) {
    io.sent.clear();
    const auto b = m.bytes();
    // Each client on its own switch port, as a guest per TAP would be.
    server->on_message(m.chaddr, b, m.chaddr.octets[5]);
    if (io.sent.size() != 1) return std::nullopt;
    replies.push_back(io.sent[0].payload);
    auto p = DhcpPacket::parse(replies.back());
    EXPECT_TRUE(p);
    if (!p) return std::nullopt;
    return *p;
  }
  std::size_t send_raw(std::vector<std::uint8_t> b) {
    io.sent.clear();
    server->on_message(mac(1), b);
    return io.sent.size();
  }

  // DISCOVER, OFFER, REQUEST, ACK; returns the acknowledged address.
  std::optional<Ipv4Addr> dora(MacAddr m, const std::string& cid = {}) {
    Msg d(Type::Discover, m);
    if (!cid.empty()) d.client_id(cid);
    auto offer = send(d);
    if (!offer || offer->op() != 2 || offer->message_type() != Type::Offer) return std::nullopt;
    Msg r(Type::Request, m);
    if (!cid.empty()) r.client_id(cid);
    r.server(ip(2)).requested(offer->yiaddr());
    auto ack = send(r);
    if (!ack || ack->message_type() != Type::Ack || ack->yiaddr() != offer->yiaddr()) return std::nullopt;
    return ack->yiaddr();
  }
};

TEST_F(NatDhcp, DoraGivesFirstPoolAddress) {
  auto offer = send(Msg(Type::Discover, mac(1)));
  ASSERT_TRUE(offer);
  EXPECT_EQ(offer->message_type(), Type::Offer);
  EXPECT_EQ(offer->yiaddr(), ip(15));
  EXPECT_EQ(offer->xid(), 0x1000u);
  EXPECT_EQ(offer->client_mac(), mac(1));
  EXPECT_EQ(io.sent[0].src, ip(2));
  EXPECT_EQ(io.sent[0].sport, 67);
  EXPECT_EQ(io.sent[0].dst, Ipv4Addr::broadcast());
  EXPECT_EQ(io.sent[0].dport, 68);
  auto ack = send(Msg(Type::Request, mac(1)).server(ip(2)).requested(ip(15)));
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->message_type(), Type::Ack);
  EXPECT_EQ(ack->yiaddr(), ip(15));
  EXPECT_EQ(io.ctr.dhcp_acks, 1u);
  EXPECT_EQ(server->lease_of(mac(1)), ip(15));
  auto st = server->status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0]["ip"], "10.0.2.15");
  EXPECT_EQ(st[0]["mac"], "52:54:00:12:34:01");
  EXPECT_EQ(st[0]["state"], "bound");
  EXPECT_EQ(st[0]["static"], false);
  EXPECT_GT(st[0]["expires_in_s"].get<long>(), 86000);
}

TEST_F(NatDhcp, FurtherClientsGetNextAddresses) {
  EXPECT_EQ(dora(mac(1)), ip(15));
  EXPECT_EQ(dora(mac(2)), ip(16));
  EXPECT_EQ(dora(mac(3)), ip(17));
  EXPECT_EQ(server->status().size(), 3u);
}

TEST_F(NatDhcp, SameClientAfterRebootGetsSameAddress) {
  EXPECT_EQ(dora(mac(1)), ip(15));
  EXPECT_EQ(dora(mac(2)), ip(16));
  // Fresh DISCOVER without option 50, as after a reboot that lost state.
  EXPECT_EQ(dora(mac(1)), ip(15));
  // INIT-REBOOT: no server id, requested address.
  auto ack = send(Msg(Type::Request, mac(2)).requested(ip(16)));
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->message_type(), Type::Ack);
  EXPECT_EQ(ack->yiaddr(), ip(16));
}

TEST_F(NatDhcp, ExpiredLeaseSurvivesUntilReused) {
  io.cfg.lease_time = 20 * kMillis;
  io.cfg.net = Ipv4Cidr{ip(0), 29};
  io.cfg.dhcp_start = ip(4);  // pool .4 .5 .6
  restart();
  EXPECT_EQ(dora(mac(1)), ip(4));
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  EXPECT_EQ(dora(mac(1)), ip(4));  // expired, not reused: same address
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  EXPECT_EQ(dora(mac(2)), ip(5));  // free addresses go first
  EXPECT_EQ(dora(mac(3)), ip(6));
  EXPECT_EQ(dora(mac(4)), ip(4));  // pool full: the oldest expired lease is reclaimed
  EXPECT_EQ(io.ctr.dhcp_exhausted, 0u);
  EXPECT_FALSE(server->lease_of(mac(1)));
}

TEST_F(NatDhcp, ClientIdPreferredOverMac) {
  EXPECT_EQ(dora(mac(1), "\x01guest-a"), ip(15));
  // Same client id, new NIC: same lease.
  EXPECT_EQ(dora(mac(9), "\x01guest-a"), ip(15));
  // Same MAC, no client id: another client.
  EXPECT_EQ(dora(mac(1)), ip(16));
  // Same MAC, other client id: yet another.
  EXPECT_EQ(dora(mac(1), "\x01guest-b"), ip(17));
  bool seen = false;
  for (const auto& l : server->status())
    if (l.contains("client_id") && l["client_id"] == "0167756573742d61") seen = true;
  EXPECT_TRUE(seen);
}

TEST_F(NatDhcp, RequestForForeignAddressIsNaked) {
  EXPECT_EQ(dora(mac(1)), ip(15));
  EXPECT_EQ(dora(mac(2)), ip(16));
  // Another client's address.
  auto nak = send(Msg(Type::Request, mac(2)).requested(ip(15)));
  ASSERT_TRUE(nak);
  EXPECT_EQ(nak->message_type(), Type::Nak);
  EXPECT_EQ(nak->yiaddr(), Ipv4Addr{});
  EXPECT_EQ(io.sent[0].dst, Ipv4Addr::broadcast());
  // Outside the network (a guest moved from another LAN).
  nak = send(Msg(Type::Request, mac(3)).requested(Ipv4Addr{{192, 168, 1, 50}}));
  ASSERT_TRUE(nak);
  EXPECT_EQ(nak->message_type(), Type::Nak);
  // The gateway's own address.
  nak = send(Msg(Type::Request, mac(3)).requested(ip(2)));
  ASSERT_TRUE(nak);
  EXPECT_EQ(nak->message_type(), Type::Nak);
  // SELECTING us with an address we did not offer.
  nak = send(Msg(Type::Request, mac(1)).server(ip(2)).requested(ip(20)));
  ASSERT_TRUE(nak);
  EXPECT_EQ(nak->message_type(), Type::Nak);
  EXPECT_EQ(io.ctr.dhcp_naks, 4u);
  EXPECT_EQ(server->lease_of(mac(2)), ip(16));
}

TEST_F(NatDhcp, UnknownClientGetsFreeRequestedAddress) {
  // vnet restarted, the guest still holds .30: it keeps it.
  auto ack = send(Msg(Type::Request, mac(5)).requested(ip(30)));
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->message_type(), Type::Ack);
  EXPECT_EQ(ack->yiaddr(), ip(30));
  // And DISCOVER with option 50 is honoured when free.
  auto offer = send(Msg(Type::Discover, mac(6)).requested(ip(40)));
  ASSERT_TRUE(offer);
  EXPECT_EQ(offer->yiaddr(), ip(40));
}

TEST_F(NatDhcp, RenewingIsUnicastToKnownGuest) {
  EXPECT_EQ(dora(mac(1)), ip(15));
  io.macs[ip(15)] = mac(1);
  auto ack = send(Msg(Type::Request, mac(1)).ci(ip(15)));
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->message_type(), Type::Ack);
  EXPECT_EQ(ack->ciaddr(), ip(15));
  EXPECT_EQ(io.sent[0].dst, ip(15));
  // Broadcast flag wins.
  Msg m(Type::Request, mac(1));
  m.ci(ip(15)).flags = DhcpPacket::kBroadcastFlag;
  ack = send(m);
  ASSERT_TRUE(ack);
  EXPECT_TRUE(ack->broadcast_flag());
  EXPECT_EQ(io.sent[0].dst, Ipv4Addr::broadcast());
  // Unknown MAC for ciaddr: broadcast rather than lose the reply to ARP.
  io.macs.clear();
  ack = send(Msg(Type::Request, mac(1)).ci(ip(15)));
  ASSERT_TRUE(ack);
  EXPECT_EQ(io.sent[0].dst, Ipv4Addr::broadcast());
}

TEST_F(NatDhcp, SelectingAnotherServerDropsOurOffer) {
  auto offer = send(Msg(Type::Discover, mac(1)));
  ASSERT_TRUE(offer);
  EXPECT_FALSE(send(Msg(Type::Request, mac(1)).server(Ipv4Addr{{10, 0, 2, 99}}).requested(ip(15))));
  EXPECT_TRUE(io.sent.empty());
  EXPECT_TRUE(server->status().empty());
}

TEST_F(NatDhcp, ReleaseFrees) {
  EXPECT_EQ(dora(mac(1)), ip(15));
  EXPECT_FALSE(send(Msg(Type::Release, mac(1)).ci(ip(15)).server(ip(2))));
  EXPECT_TRUE(io.sent.empty());
  EXPECT_FALSE(server->lease_of(mac(1)));
  EXPECT_TRUE(server->status().empty());
  EXPECT_EQ(dora(mac(2)), ip(15));
}

TEST_F(NatDhcp, ReleaseOfSomeoneElsesAddressIsIgnored) {
  EXPECT_EQ(dora(mac(1)), ip(15));
  send(Msg(Type::Release, mac(2)).ci(ip(15)));
  EXPECT_EQ(server->lease_of(mac(1)), ip(15));
}

TEST_F(NatDhcp, DeclineSkipsAddress) {
  EXPECT_EQ(dora(mac(1)), ip(15));
  EXPECT_FALSE(send(Msg(Type::Decline, mac(1)).requested(ip(15)).server(ip(2))));
  EXPECT_FALSE(server->lease_of(mac(1)));
  EXPECT_EQ(dora(mac(1)), ip(16));
  EXPECT_EQ(dora(mac(2)), ip(17));
  // Asking for it explicitly does not help either.
  auto nak = send(Msg(Type::Request, mac(3)).requested(ip(15)));
  ASSERT_TRUE(nak);
  EXPECT_EQ(nak->message_type(), Type::Nak);
  bool declined = false;
  for (const auto& l : server->status())
    if (l["ip"] == "10.0.2.15" && l["state"] == "declined") declined = true;
  EXPECT_TRUE(declined);
}

TEST_F(NatDhcp, InformGetsOptionsWithoutLease) {
  io.macs[ip(50)] = mac(7);
  auto ack = send(Msg(Type::Inform, mac(7)).ci(ip(50)));
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->message_type(), Type::Ack);
  EXPECT_EQ(ack->yiaddr(), Ipv4Addr{});
  EXPECT_EQ(ack->ciaddr(), ip(50));
  EXPECT_FALSE(ack->find(dhcp_opt::kLeaseTime));
  EXPECT_FALSE(ack->find(dhcp_opt::kRenewalTime));
  EXPECT_EQ(ack->find(dhcp_opt::kRouter)->data[3], 2);
  EXPECT_EQ(ack->find(dhcp_opt::kDns)->data[3], 3);
  EXPECT_EQ(io.sent[0].dst, ip(50));
  EXPECT_TRUE(server->status().empty());
  EXPECT_FALSE(server->lease_of(mac(7)));
}

TEST_F(NatDhcp, StaticReservation) {
  server->reserve(mac(3), ip(15));  // inside the pool
  server->reserve(mac(4), ip(10));  // outside the dynamic pool
  EXPECT_EQ(dora(mac(1)), ip(16));
  EXPECT_EQ(dora(mac(3)), ip(15));
  EXPECT_EQ(dora(mac(4)), ip(10));
  // Nobody else gets a reserved address, even by asking.
  auto nak = send(Msg(Type::Request, mac(5)).requested(ip(15)));
  ASSERT_TRUE(nak);
  EXPECT_EQ(nak->message_type(), Type::Nak);
  int statics = 0;
  for (const auto& l : server->status()) statics += l["static"].get<bool>();
  EXPECT_EQ(statics, 2);
  // Invalid reservations are refused.
  server->reserve(mac(6), ip(2));
  EXPECT_EQ(dora(mac(6)), ip(17));
}

TEST_F(NatDhcp, ReservationTakesAddressFromDynamicHolder) {
  EXPECT_EQ(dora(mac(1)), ip(15));
  server->reserve(mac(3), ip(15));
  auto nak = send(Msg(Type::Request, mac(1)).ci(ip(15)));
  ASSERT_TRUE(nak);
  EXPECT_EQ(nak->message_type(), Type::Nak);
  EXPECT_EQ(dora(mac(3)), ip(15));
  EXPECT_EQ(dora(mac(1)), ip(16));
}

TEST_F(NatDhcp, ExhaustionIsCounted) {
  io.cfg.net = Ipv4Cidr{ip(0), 29};
  io.cfg.dhcp_start = ip(2);  // .2 gateway and .3 DNS are skipped: pool .4 .5 .6
  restart();
  EXPECT_EQ(dora(mac(1)), ip(4));
  EXPECT_EQ(dora(mac(2)), ip(5));
  EXPECT_EQ(dora(mac(3)), ip(6));
  EXPECT_FALSE(send(Msg(Type::Discover, mac(4))));
  EXPECT_TRUE(io.sent.empty());
  EXPECT_EQ(io.ctr.dhcp_exhausted, 1u);
  // Existing clients are still served.
  EXPECT_EQ(dora(mac(2)), ip(5));
}

TEST_F(NatDhcp, MaxLeasesIsCounted) {
  io.cfg.max_leases = 2;
  restart();
  EXPECT_TRUE(dora(mac(1)));
  EXPECT_TRUE(dora(mac(2)));
  EXPECT_FALSE(send(Msg(Type::Discover, mac(3))));
  EXPECT_EQ(io.ctr.dhcp_exhausted, 1u);
  // Many DISCOVERs from one client still make one lease.
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(send(Msg(Type::Discover, mac(1))));
  EXPECT_EQ(server->status().size(), 2u);
}

TEST_F(NatDhcp, ReplyCarriesOptionsAndIsPadded) {
  io.cfg.mtu = 65520;
  io.cfg.domain = "vnet.test";
  io.cfg.bootfile = "pxelinux.0";
  restart();
  auto offer = send(Msg(Type::Discover, mac(1)).hostname("vm\x01one"));
  ASSERT_TRUE(offer);
  EXPECT_GE(io.sent[0].payload.size(), 300u);
  auto addr = [&](std::uint8_t code) { return Ipv4Addr::from_bytes(offer->find(code)->data); };
  auto u32 = [&](std::uint8_t code) { return load_be32(offer->find(code)->data, 0); };
  for (std::uint8_t code : {1, 3, 6, 26, 51, 54, 58, 59, 12, 15, 119, 66, 67}) ASSERT_TRUE(offer->find(code)) << +code;
  EXPECT_EQ(addr(1), (Ipv4Addr{{255, 255, 255, 0}}));
  EXPECT_EQ(addr(3), ip(2));
  EXPECT_EQ(addr(6), ip(3));
  EXPECT_EQ(addr(54), ip(2));
  EXPECT_EQ(load_be16(offer->find(26)->data, 0), 65520);
  EXPECT_EQ(u32(51), 86400u);
  EXPECT_EQ(u32(58), 43200u);
  EXPECT_EQ(u32(59), 75600u);
  auto text = [&](std::uint8_t code) {
    Bytes d = offer->find(code)->data;
    return std::string(d.begin(), d.end());
  };
  EXPECT_EQ(text(12), "vm-one");  // sanitised echo
  EXPECT_EQ(text(15), "vnet.test");
  EXPECT_EQ(text(119), std::string("\x04vnet\x04test\x00", 11));
  EXPECT_EQ(text(66), "10.0.2.2");
  EXPECT_EQ(text(67), "pxelinux.0");
  EXPECT_EQ(offer->file(), "pxelinux.0");
  EXPECT_EQ(offer->siaddr(), ip(2));
}

TEST_F(NatDhcp, NoDomainOrBootOptionsUnlessConfigured) {
  auto offer = send(Msg(Type::Discover, mac(1)));
  ASSERT_TRUE(offer);
  for (std::uint8_t code : {12, 15, 119, 66, 67}) EXPECT_FALSE(offer->find(code)) << +code;
  EXPECT_EQ(load_be16(offer->find(26)->data, 0), 1500);
}

TEST_F(NatDhcp, ZeroLengthOptionsAreTolerated) {
  Msg m(Type::Discover, mac(1));
  m.opt(dhcp_opt::kHostname, {}).opt(80, {}).opt(dhcp_opt::kRequestedIp, {});
  auto offer = send(m);
  ASSERT_TRUE(offer);
  EXPECT_EQ(offer->yiaddr(), ip(15));
}

// --- malformed input: each dropped, counted, unanswered ---

class NatDhcpMalformed : public NatDhcp {
 protected:
  void expect_dropped(std::vector<std::uint8_t> b) {
    const auto before = io.ctr.drop_malformed;
    EXPECT_EQ(send_raw(std::move(b)), 0u);
    EXPECT_EQ(io.ctr.drop_malformed, before + 1);
    EXPECT_TRUE(server->status().empty());
  }
  std::vector<std::uint8_t> discover() { return Msg(Type::Discover, mac(1)).bytes(); }
};

TEST_F(NatDhcpMalformed, TruncatedBeforeCookie) {
  auto b = discover();
  b.resize(DhcpPacket::kCookieOffset + 2);
  expect_dropped(b);
  expect_dropped({});
}

TEST_F(NatDhcpMalformed, BadCookie) {
  auto b = discover();
  b[DhcpPacket::kCookieOffset + 3] ^= 1;
  expect_dropped(b);
}

TEST_F(NatDhcpMalformed, OptionLengthOverrun) {
  auto b = discover();
  b.back() = dhcp_opt::kHostname;  // replaces End
  b.push_back(40);
  b.push_back('x');
  expect_dropped(b);
}

TEST_F(NatDhcpMalformed, MessageTypeMissing) {
  auto b = discover();
  b[DhcpPacket::kOptionsOffset] = dhcp_opt::kHostname;  // 53 becomes a 1-byte hostname
  expect_dropped(b);
}

TEST_F(NatDhcpMalformed, MessageTypeZeroLength) {
  auto b = discover();
  b[DhcpPacket::kOptionsOffset + 1] = 0;  // 53 with no value
  b[DhcpPacket::kOptionsOffset + 2] = dhcp_opt::kPad;
  expect_dropped(b);
}

TEST_F(NatDhcpMalformed, WrongHtypeOrHlen) {
  auto b = discover();
  b[1] = 6;  // IEEE 802
  expect_dropped(b);
  b = discover();
  b[2] = 8;
  expect_dropped(b);
  b = discover();
  b[2] = 200;
  expect_dropped(b);
}

TEST_F(NatDhcpMalformed, BootReplyFromClient) {
  auto b = discover();
  b[0] = 2;
  expect_dropped(b);
}

TEST_F(NatDhcpMalformed, ServerMessageTypeFromClient) {
  expect_dropped(Msg(Type::Offer, mac(1)).bytes());
  expect_dropped(Msg(Type::Ack, mac(1)).bytes());
}

TEST_F(NatDhcpMalformed, BadOverload) {
  auto b = discover();
  b.back() = dhcp_opt::kOverload;
  b.insert(b.end(), {1, 1, dhcp_opt::kEnd});
  // file area: an option overrunning its 128 bytes.
  b[DhcpPacket::kFileOffset + 127] = dhcp_opt::kHostname;
  expect_dropped(b);
  b = discover();
  b.back() = dhcp_opt::kOverload;
  b.insert(b.end(), {1, 7, dhcp_opt::kEnd});
  expect_dropped(b);
}

TEST_F(NatDhcpMalformed, InformWithoutAddress) { expect_dropped(Msg(Type::Inform, mac(1)).bytes()); }

TEST_F(NatDhcp, OverloadedMessageIsServed) {
  // Option 53 only in the file field, and a "file name" that is really options.
  auto b = Msg(Type::Discover, mac(1)).bytes();
  b.erase(b.begin() + DhcpPacket::kOptionsOffset, b.end());
  b.insert(b.end(), {dhcp_opt::kOverload, 1, 1, dhcp_opt::kEnd});
  const std::uint8_t file_opts[] = {dhcp_opt::kMessageType, 1, 1, dhcp_opt::kHostname, 3, 'o', 'v', 'l', dhcp_opt::kEnd};
  std::memcpy(b.data() + DhcpPacket::kFileOffset, file_opts, sizeof(file_opts));
  io.sent.clear();
  server->on_message(mac(1), b);
  ASSERT_EQ(io.sent.size(), 1u);
  auto offer = DhcpPacket::parse(io.sent[0].payload);
  ASSERT_TRUE(offer);
  EXPECT_EQ(offer->message_type(), Type::Offer);
  EXPECT_EQ(server->status()[0]["hostname"], "ovl");
}

TEST_F(NatDhcp, ChaddrOtherThanSourceMacIsDropped) {
  io.sent.clear();
  server->on_message(mac(2), Msg(Type::Discover, mac(1)).bytes(), 1);
  EXPECT_TRUE(io.sent.empty());
  EXPECT_EQ(io.ctr.dhcp_chaddr_mismatch, 1u);
  EXPECT_TRUE(server->status().empty());
}

TEST_F(NatDhcp, RandomChaddrStormFromOnePortLeavesThePool) {
  // Issue 7 item 6: a guest cycling chaddrs (and source MACs) on its port
  // bound the whole pool. Now its port holds max_leases_per_port at most.
  io.cfg.net = Ipv4Cidr{{{10, 0, 2, 0}}, 27};  // 15..30: 16 addresses
  restart();
  int offers = 0;
  for (int i = 0; i < 200; ++i) {
    const MacAddr m{{0x02, 0xee, 0, 0, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i)}};
    io.sent.clear();
    Msg d(Type::Discover, m);
    server->on_message(m, d.bytes(), /*port=*/5);
    offers += static_cast<int>(io.sent.size());
    Msg r(Type::Request, m);
    r.requested(ip(static_cast<std::uint8_t>(15 + i % 16))).server(io.cfg.gateway);
    server->on_message(m, r.bytes(), 5);
  }
  EXPECT_EQ(offers, static_cast<int>(io.cfg.max_leases_per_port));
  EXPECT_GT(io.ctr.dhcp_port_limit, 0u);
  // A new guest on another port still gets an address.
  auto got = dora(mac(77));
  ASSERT_TRUE(got);
  EXPECT_TRUE(io.cfg.net.contains(*got));
}

TEST_F(NatDhcp, DeclineLoopFromOnePortCannotDrainThePool) {
  io.cfg.net = Ipv4Cidr{{{10, 0, 2, 0}}, 27};
  restart();
  for (int i = 0; i < 40; ++i) {
    const MacAddr m{{0x02, 0xdd, 0, 0, 0, static_cast<std::uint8_t>(i)}};
    io.sent.clear();
    server->on_message(m, Msg(Type::Discover, m).bytes(), 6);
    if (io.sent.empty()) continue;
    auto offer = DhcpPacket::parse(io.sent[0].payload);
    ASSERT_TRUE(offer);
    const Ipv4Addr a = offer->yiaddr();
    Msg r(Type::Request, m);
    r.requested(a).server(io.cfg.gateway);
    server->on_message(m, r.bytes(), 6);
    Msg dec(Type::Decline, m);
    dec.requested(a).server(io.cfg.gateway);
    server->on_message(m, dec.bytes(), 6);
  }
  auto got = dora(mac(78));
  ASSERT_TRUE(got);
}

}  // namespace
}  // namespace vnet::nat
