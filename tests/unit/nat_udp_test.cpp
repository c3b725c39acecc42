// UDP translator against real loopback sockets.
#include "nat/udp.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/fake_guest_io.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"

namespace vnet::nat {
namespace {

using namespace vnet::wire;
using testing::FakeGuestIo;
using testing::run_until;

const Ipv4Addr kGuest{{10, 0, 2, 15}};
const Ipv4Addr kGateway{{10, 0, 2, 2}};

SockAddr loopback(std::uint16_t port) { return SockAddr::from_ipv4(Ipv4Addr{{127, 0, 0, 1}}, port); }

// A UDP socket bound to 127.0.0.1 on a kernel-chosen port.
UniqueFd bound_udp(std::uint16_t* port) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  SockAddr a = loopback(0);
  EXPECT_EQ(::bind(s.get(), a.get(), a.length), 0);
  sockaddr_in got{};
  socklen_t len = sizeof got;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&got), &len);
  *port = ntohs(got.sin_port);
  return s;
}

Bytes text(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

class NatUdp : public ::testing::Test {
 protected:
  void SetUp() override {
    echo_ = bound_udp(&echo_port_);
    loop_.add(echo_.get(), EPOLLIN, [this](std::uint32_t) {
      std::uint8_t buf[2048];
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      ssize_t n = ::recvfrom(echo_.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n > 0) ::sendto(echo_.get(), buf, n, 0, reinterpret_cast<sockaddr*>(&from), len);
    });
  }
  void TearDown() override { loop_.remove(echo_.get()); }

  EventLoop loop_;
  UniqueFd echo_;
  std::uint16_t echo_port_ = 0;
};

TEST_F(NatUdp, DatagramReachesHostEchoAndReplyComesBackToGuest) {
  FakeGuestIo io(loop_);
  UdpTranslator udp(io);
  udp.on_datagram(kGuest, 40000, kGateway, echo_port_, loopback(echo_port_), text("hello"));
  ASSERT_TRUE(run_until(loop_, [&] { return !io.sent.empty(); }, 2 * kSeconds));

  const auto& p = io.sent[0];
  EXPECT_EQ(p.src, kGateway);  // the address the guest talked to, not 127.0.0.1
  EXPECT_EQ(p.dst, kGuest);
  EXPECT_EQ(p.proto, IpProtocol::Udp);
  auto dgram = UdpPacket::parse(p.l4);
  ASSERT_TRUE(dgram);
  EXPECT_EQ(dgram->src_port(), echo_port_);
  EXPECT_EQ(dgram->dst_port(), 40000);
  EXPECT_NE(dgram->checksum(), 0);
  EXPECT_TRUE(dgram->verify_checksum(IpAddr(p.src), IpAddr(p.dst)));
  EXPECT_EQ(std::string(dgram->payload().begin(), dgram->payload().end()), "hello");

  EXPECT_EQ(io.counters().udp_flows, 1u);
  EXPECT_EQ(io.counters().udp_out, 1u);
  EXPECT_EQ(io.counters().udp_in, 1u);
  auto st = udp.status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0]["guest"], "10.0.2.15:40000");
  EXPECT_EQ(st[0]["remote"], "10.0.2.2:" + std::to_string(echo_port_));
  EXPECT_EQ(st[0]["in"], 1);
  EXPECT_EQ(st[0]["out"], 1);
}

TEST_F(NatUdp, SameFlowReusesItsSocket) {
  FakeGuestIo io(loop_);
  UdpTranslator udp(io);
  udp.on_datagram(kGuest, 40000, kGateway, echo_port_, loopback(echo_port_), text("one"));
  udp.on_datagram(kGuest, 40000, kGateway, echo_port_, loopback(echo_port_), text("two"));
  udp.on_datagram(kGuest, 40001, kGateway, echo_port_, loopback(echo_port_), text("three"));
  ASSERT_TRUE(run_until(loop_, [&] { return io.sent.size() == 3; }, 2 * kSeconds));
  EXPECT_EQ(io.counters().udp_flows, 2u);
  EXPECT_EQ(io.counters().udp_out, 3u);
  EXPECT_EQ(udp.status().size(), 2u);
}

// A burst from the host is read in batches: every datagram reaches the guest
// in order, and one too large for the guest's MTU is dropped and counted
// without taking the others of its batch with it.
TEST_F(NatUdp, ABurstFromTheHostArrivesWholeAndInOrder) {
  FakeGuestIo io(loop_);
  UdpTranslator udp(io);
  std::uint16_t server_port = 0;
  UniqueFd server = bound_udp(&server_port);
  udp.on_datagram(kGuest, 40000, kGateway, server_port, loopback(server_port), text("hi"));
  sockaddr_storage flow{};
  socklen_t flow_len = sizeof flow;
  std::uint8_t buf[64];
  ASSERT_TRUE(run_until(loop_, [&] {
    return ::recvfrom(server.get(), buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&flow), &flow_len) > 0;
  }, 2 * kSeconds));
  const std::vector<std::uint8_t> oversized(2000, 'x');  // the guest's MTU is 1500
  for (int i = 0; i < 100; ++i) {
    if (i == 50)
      ::sendto(server.get(), oversized.data(), oversized.size(), 0, reinterpret_cast<sockaddr*>(&flow), flow_len);
    const std::string n = std::to_string(i);
    ::sendto(server.get(), n.data(), n.size(), 0, reinterpret_cast<sockaddr*>(&flow), flow_len);
  }
  ASSERT_TRUE(run_until(loop_, [&] { return io.sent.size() >= 100; }, 2 * kSeconds)) << io.sent.size();
  ASSERT_EQ(io.sent.size(), 100u);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(std::string(io.sent[i].payload.begin(), io.sent[i].payload.end()), std::to_string(i));
  EXPECT_EQ(io.counters().drop_unsupported, 1u);
  EXPECT_EQ(io.counters().udp_in, 100u);
}

TEST_F(NatUdp, IdleFlowsExpireDnsSooner) {
  FakeGuestIo io(loop_);
  UdpTranslator udp(io);
  std::uint16_t other_port = 0;
  UniqueFd other = bound_udp(&other_port);
  udp.on_datagram(kGuest, 40000, Ipv4Addr{{192, 0, 2, 1}}, 53, loopback(other_port), text("q"));
  udp.on_datagram(kGuest, 40001, kGateway, echo_port_, loopback(echo_port_), text("x"));
  ASSERT_EQ(udp.status().size(), 2u);
  const Nanos now = monotonic_now();
  udp.expire_idle(now + 5 * kSeconds);
  EXPECT_EQ(udp.status().size(), 2u);
  udp.expire_idle(now + 11 * kSeconds);  // the port-53 flow is gone
  ASSERT_EQ(udp.status().size(), 1u);
  EXPECT_EQ(udp.status()[0]["guest"], "10.0.2.15:40001");
  udp.expire_idle(now + 61 * kSeconds);
  EXPECT_EQ(udp.status().size(), 0u);
  // A new datagram after expiry opens a new flow.
  udp.on_datagram(kGuest, 40001, kGateway, echo_port_, loopback(echo_port_), text("y"));
  EXPECT_EQ(io.counters().udp_flows, 3u);
}

// Datagram i of a test burst: `size` bytes, its index in the first two, the
// rest a pattern of it, so a datagram cut in the wrong place shows.
std::vector<std::uint8_t> numbered(int i, std::size_t size) {
  std::vector<std::uint8_t> d(size, static_cast<std::uint8_t>(i * 7 + 1));
  d[0] = static_cast<std::uint8_t>(i >> 8);
  d[1] = static_cast<std::uint8_t>(i);
  return d;
}

// Receives everything waiting on `server` (non-blocking) into `got` while
// the translator's loop runs, until `want` datagrams came.
bool receive_all(EventLoop& loop, int server, std::vector<std::vector<std::uint8_t>>& got, std::size_t want) {
  return run_until(loop, [&] {
    std::uint8_t buf[65536];
    for (ssize_t n; (n = ::recv(server, buf, sizeof buf, MSG_DONTWAIT)) >= 0;) got.emplace_back(buf, buf + n);
    return got.size() >= want;
  }, 2 * kSeconds);
}

// A guest's burst to one flow leaves in runs (UDP_SEGMENT) and the host
// side receives each datagram whole, with its own boundaries, in order:
// equal sizes, a shorter last one closing the run, a larger one after it
// starting the next, and the 64-datagram limit splitting a long burst.
// Loopback takes segmentation offload, as the veth and NICs of hosts do.
TEST_F(NatUdp, AGuestBurstLeavesInRunsAndArrivesAsTheSameDatagramsInOrder) {
  FakeGuestIo io(loop_);
  UdpTranslator udp(io);
  std::uint16_t server_port = 0;
  UniqueFd server = bound_udp(&server_port);
  int rcvbuf = 4 << 20;
  ::setsockopt(server.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  std::vector<std::vector<std::uint8_t>> sent;
  auto send = [&](std::size_t size) {
    sent.push_back(numbered(static_cast<int>(sent.size()), size));
    udp.on_datagram(kGuest, 40000, kGateway, server_port, loopback(server_port), Bytes(sent.back()));
  };
  for (int i = 0; i < 40; ++i) send(1000);
  send(300);   // closes the first run
  send(1200);  // larger: a run of its own
  for (int i = 0; i < 100; ++i) send(100);
  std::vector<std::vector<std::uint8_t>> got;
  ASSERT_TRUE(receive_all(loop_, server.get(), got, sent.size())) << got.size() << " of " << sent.size();
  ASSERT_EQ(got.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(got[i], sent[i]) << "datagram " << i;
  EXPECT_EQ(io.counters().udp_out, sent.size());
  // 40 x 1000 + 300; 1200 + the first 100 (a shorter last); 64 x 100; 35 x 100.
  EXPECT_EQ(io.counters().udp_out_runs, 4u);
  EXPECT_EQ(udp.status()[0]["out"], sent.size());
}

// Two flows sending in alternation: each datagram ends the other flow's
// run, and each flow's datagrams still arrive in their order.
TEST_F(NatUdp, AlternatingFlowsKeepTheirOrder) {
  FakeGuestIo io(loop_);
  UdpTranslator udp(io);
  std::uint16_t port_a = 0, port_b = 0;
  UniqueFd a = bound_udp(&port_a), b = bound_udp(&port_b);
  for (int i = 0; i < 20; ++i) {
    const auto d = numbered(i, 500);
    udp.on_datagram(kGuest, 40000, kGateway, port_a, loopback(port_a), Bytes(d));
    udp.on_datagram(kGuest, 40000, kGateway, port_b, loopback(port_b), Bytes(d));
    if (i % 2) udp.on_datagram(kGuest, 40000, kGateway, port_b, loopback(port_b), Bytes(d));
  }
  std::vector<std::vector<std::uint8_t>> got_a, got_b;
  ASSERT_TRUE(receive_all(loop_, a.get(), got_a, 20));
  ASSERT_TRUE(receive_all(loop_, b.get(), got_b, 30));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(got_a[static_cast<std::size_t>(i)], numbered(i, 500));
  std::size_t k = 0;
  for (int i = 0; i < 20; ++i)
    for (int times = i % 2 ? 2 : 1; times > 0; --times) EXPECT_EQ(got_b[k++], numbered(i, 500)) << i;
  EXPECT_EQ(io.counters().udp_out, 50u);
  EXPECT_EQ(io.counters().udp_out_runs, 10u);  // b's pairs
}

TEST_F(NatUdp, FlowLimitsAreCounted) {
  NatConfig cfg;
  cfg.max_flows_per_guest = 2;
  cfg.max_flows = 3;
  FakeGuestIo io(loop_, cfg);
  UdpTranslator udp(io);
  for (std::uint16_t sp = 1000; sp < 1003; ++sp)
    udp.on_datagram(kGuest, sp, kGateway, echo_port_, loopback(echo_port_), text("x"));
  EXPECT_EQ(io.counters().udp_flows, 2u);
  EXPECT_EQ(io.counters().drop_flow_limit, 1u);
  const Ipv4Addr other{{10, 0, 2, 16}};
  io.macs[other] = MacAddr{{0x52, 0x54, 0, 0, 0, 0x16}};  // another guest
  udp.on_datagram(other, 1000, kGateway, echo_port_, loopback(echo_port_), text("x"));
  udp.on_datagram(other, 1001, kGateway, echo_port_, loopback(echo_port_), text("x"));  // network-wide cap
  EXPECT_EQ(io.counters().udp_flows, 3u);
  EXPECT_EQ(io.counters().drop_flow_limit, 2u);
}

TEST_F(NatUdp, ClosedPortGivesGuestIcmpPortUnreachable) {
  FakeGuestIo io(loop_);
  UdpTranslator udp(io);
  std::uint16_t closed = 0;
  { UniqueFd gone = bound_udp(&closed); }  // nothing listens there now
  const Ipv4Addr remote{{192, 0, 2, 7}};
  udp.on_datagram(kGuest, 40000, remote, closed, loopback(closed), text("anyone?"));
  ASSERT_TRUE(run_until(loop_, [&] { return !io.sent.empty(); }, 2 * kSeconds));
  const auto& p = io.sent[0];
  EXPECT_EQ(p.proto, IpProtocol::Icmp);
  EXPECT_EQ(p.src, remote);
  EXPECT_EQ(p.dst, kGuest);
  auto icmp = Icmpv4Packet::parse(p.l4);
  ASSERT_TRUE(icmp);
  EXPECT_TRUE(icmp->verify_checksum());
  EXPECT_EQ(icmp->type(), Icmpv4Type::DestUnreachable);
  EXPECT_EQ(icmp->code(), Icmpv4Unreachable::Port);
  auto quoted = Ipv4Packet::parse(icmp->payload());
  ASSERT_TRUE(quoted);
  EXPECT_EQ(quoted->src(), kGuest);
  EXPECT_EQ(quoted->dst(), remote);
  EXPECT_EQ(load_be16(quoted->payload(), 0), 40000);
  EXPECT_EQ(load_be16(quoted->payload(), 2), closed);
}

TEST_F(NatUdp, InboundForwardReachesGuestAndRepliesReturnToClient) {
  FakeGuestIo io(loop_);
  UdpTranslator udp(io);
  std::uint16_t fwd_port = 0, client_port = 0;
  UniqueFd fwd = bound_udp(&fwd_port);        // the port forward's socket
  UniqueFd client = bound_udp(&client_port);  // a host program
  SockAddr fwd_addr = loopback(fwd_port);
  ASSERT_EQ(::sendto(client.get(), "ping", 4, 0, fwd_addr.get(), fwd_addr.length), 4);

  // What the port-forward code does: read and hand over.
  std::uint8_t buf[64];
  SockAddr from;
  from.length = sizeof from.storage;
  ssize_t n = -1;
  ASSERT_TRUE(run_until(loop_, [&] {
    n = ::recvfrom(fwd.get(), buf, sizeof buf, 0, from.get(), &from.length);
    return n > 0;
  }, 2 * kSeconds));
  udp.inbound(fwd.get(), from, kGuest, 8080, Bytes(buf, static_cast<std::size_t>(n)));

  ASSERT_EQ(io.sent.size(), 1u);
  const auto& p = io.sent[0];
  EXPECT_EQ(p.src, kGateway);  // a loopback client appears as the gateway
  EXPECT_EQ(p.dst, kGuest);
  auto dgram = UdpPacket::parse(p.l4);
  ASSERT_TRUE(dgram);
  EXPECT_EQ(dgram->src_port(), client_port);
  EXPECT_EQ(dgram->dst_port(), 8080);
  EXPECT_TRUE(dgram->verify_checksum(IpAddr(p.src), IpAddr(p.dst)));
  EXPECT_EQ(io.counters().udp_in, 1u);

  // The guest answers the address it saw; the gateway would route that here.
  udp.on_datagram(kGuest, 8080, kGateway, client_port, loopback(client_port), text("pong"));
  char got[16] = {};
  sockaddr_in src{};
  socklen_t slen = sizeof src;
  ASSERT_TRUE(run_until(loop_, [&] {
    return ::recvfrom(client.get(), got, sizeof got, 0, reinterpret_cast<sockaddr*>(&src), &slen) == 4;
  }, 2 * kSeconds));
  EXPECT_EQ(std::string(got, 4), "pong");
  EXPECT_EQ(ntohs(src.sin_port), fwd_port);  // from the forwarded port, as the client expects
  EXPECT_EQ(io.counters().udp_flows, 1u);
  ASSERT_EQ(udp.status().size(), 1u);
  EXPECT_EQ(udp.status()[0]["direction"], "in");

  udp.forget_host_fd(fwd.get());
  EXPECT_EQ(udp.status().size(), 0u);
}

TEST_F(NatUdp, InboundFromNonLoopbackClientKeepsItsAddress) {
  FakeGuestIo io(loop_);
  UdpTranslator udp(io);
  std::uint16_t fwd_port = 0;
  UniqueFd fwd = bound_udp(&fwd_port);
  SockAddr client;
  auto* in = reinterpret_cast<sockaddr_in*>(&client.storage);
  in->sin_family = AF_INET;
  in->sin_port = htons(5555);
  inet_pton(AF_INET, "192.0.2.9", &in->sin_addr);
  client.length = sizeof(sockaddr_in);
  udp.inbound(fwd.get(), client, kGuest, 8080, text("x"));
  ASSERT_EQ(io.sent.size(), 1u);
  EXPECT_EQ(io.sent[0].src, (Ipv4Addr{{192, 0, 2, 9}}));
  udp.expire_idle(monotonic_now() + 61 * kSeconds);
  EXPECT_EQ(udp.status().size(), 0u);
}

}  // namespace
}  // namespace vnet::nat
