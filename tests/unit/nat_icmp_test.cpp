// ICMP echo translator: real ping sockets when the host permits them
// (net.ipv4.ping_group_range), else the icmp_unavailable path. Each path's
// test runs in a network namespace of its own with the sysctl set for it,
// so both run whatever the machine's setting is.
#include "nat/icmp.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "support/fake_guest_io.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"

namespace vnet::nat {
namespace {

using namespace vnet::wire;
using testing::FakeGuestIo;
using testing::run_for;
using testing::run_until;

const Ipv4Addr kGuest{{10, 0, 2, 15}};
const Ipv4Addr kLoopback{{127, 0, 0, 1}};

bool ping_sockets_allowed() {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP));
  return s.valid();
}

bool bring_loopback_up() {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq req{};
  std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
  if (!s.valid() || ::ioctl(s.get(), SIOCGIFFLAGS, &req) != 0) return false;
  req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP);
  return ::ioctl(s.get(), SIOCSIFFLAGS, &req) == 0;
}

bool write_ping_group_range(const char* range) {
  UniqueFd f(::open("/proc/sys/net/ipv4/ping_group_range", O_WRONLY | O_CLOEXEC));
  const auto len = static_cast<ssize_t>(std::strlen(range));
  return f.valid() && ::write(f.get(), range, static_cast<std::size_t>(len)) == len;
}

// Runs `body` on a thread that moved into a new network namespace (a
// thread's own: unshare affects only the caller) with loopback up and
// ping_group_range set to `range`. Returns false, without running it, where
// namespaces cannot be made (not root and no user namespaces).
bool run_in_private_netns(const char* range, const std::function<void()>& body) {
  bool entered = false;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) return;
    entered = true;
    ASSERT_TRUE(bring_loopback_up()) << std::strerror(errno);
    ASSERT_TRUE(write_ping_group_range(range)) << std::strerror(errno);
    body();
  });
  t.join();
  return entered;
}

// An IPv4 packet from the guest carrying an ICMP message.
struct GuestPacket {
  std::vector<std::uint8_t> buf;
  Ipv4Packet ip() const { return *Ipv4Packet::parse(buf); }
};

GuestPacket icmp_packet(Ipv4Addr dst, const Icmpv4Repr& icmp) {
  GuestPacket p;
  p.buf.resize(Ipv4Packet::kMinHeaderLen + icmp.buffer_len());
  Ipv4Repr ip;
  ip.src = kGuest;
  ip.dst = dst;
  ip.protocol = IpProtocol::Icmp;
  ip.payload_len = static_cast<std::uint16_t>(icmp.buffer_len());
  ip.emit(p.buf);
  icmp.emit(MutBytes(p.buf).subspan(Ipv4Packet::kMinHeaderLen));
  return p;
}

const std::string kData = "vnet ping payload";
Bytes data() { return {reinterpret_cast<const std::uint8_t*>(kData.data()), kData.size()}; }

void echo_through_ping_socket() {
  ASSERT_TRUE(ping_sockets_allowed());
  EventLoop loop;
  FakeGuestIo io(loop);
  IcmpTranslator icmp(io);
  auto pkt = icmp_packet(kLoopback, Icmpv4Repr::echo_request(0x4242, 7, data()));
  icmp.on_packet(pkt.ip(), kLoopback);
  ASSERT_TRUE(run_until(loop, [&] { return !io.sent.empty(); }, 2 * kSeconds));
  const auto& p = io.sent[0];
  EXPECT_EQ(p.src, kLoopback);
  EXPECT_EQ(p.dst, kGuest);
  EXPECT_EQ(p.proto, IpProtocol::Icmp);
  auto reply = Icmpv4Packet::parse(p.l4);
  ASSERT_TRUE(reply);
  EXPECT_TRUE(reply->verify_checksum());
  EXPECT_EQ(reply->type(), Icmpv4Type::EchoReply);
  EXPECT_EQ(reply->echo_ident(), 0x4242);  // the guest's, not the socket's
  EXPECT_EQ(reply->echo_seq(), 7);
  EXPECT_EQ(std::string(reply->payload().begin(), reply->payload().end()), kData);
  EXPECT_EQ(io.counters().icmp_echo_out, 1u);
  EXPECT_EQ(io.counters().icmp_echo_in, 1u);

  // Same session reuses the mapping; another identifier gets its own.
  icmp.on_packet(icmp_packet(kLoopback, Icmpv4Repr::echo_request(0x4242, 8, data())).ip(), kLoopback);
  icmp.on_packet(icmp_packet(kLoopback, Icmpv4Repr::echo_request(0x4343, 1, data())).ip(), kLoopback);
  EXPECT_EQ(icmp.size(), 2u);
  ASSERT_TRUE(run_until(loop, [&] { return io.sent.size() == 3; }, 2 * kSeconds));
  icmp.expire_idle(monotonic_now() + 31 * kSeconds);
  EXPECT_EQ(icmp.size(), 0u);
}

TEST(NatIcmp, EchoThroughPingSocket) {
  if (run_in_private_netns("0 2147483647", echo_through_ping_socket)) return;
  if (!ping_sockets_allowed())
    GTEST_SKIP() << "no network namespace could be made and the host's ping_group_range forbids ping sockets";
  echo_through_ping_socket();
}

// An IPv6 packet from a guest carrying an ICMPv6 message.
struct GuestPacket6 {
  std::vector<std::uint8_t> buf;
  Ipv6Packet ip() const { return *Ipv6Packet::parse(buf); }
  Bytes l4() const { return Bytes(buf).subspan(Ipv6Packet::kHeaderLen); }
};

const Ipv6Addr kGuest6{{0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x00}};

GuestPacket6 icmp6_packet(const Ipv6Addr& dst, const Icmpv6Repr& icmp) {
  GuestPacket6 p;
  p.buf.resize(Ipv6Packet::kHeaderLen + icmp.buffer_len());
  Ipv6Repr ip;
  ip.src = kGuest6;
  ip.dst = dst;
  ip.next_header = IpProtocol::Icmpv6;
  ip.payload_len = static_cast<std::uint16_t>(icmp.buffer_len());
  ip.emit(p.buf);
  icmp.emit(MutBytes(p.buf).subspan(Ipv6Packet::kHeaderLen), kGuest6, dst);
  return p;
}

void echo6_through_ping_socket() {
  ASSERT_TRUE(ping_sockets_allowed());
  EventLoop loop;
  FakeGuestIo io(loop);
  IcmpTranslator icmp(io);
  const Ipv6Addr target = Ipv6Addr::loopback();
  // What the guest pinged (an outside address) is where the reply seems to
  // come from, whatever the host socket was aimed at.
  const Ipv6Addr pinged{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}};
  auto pkt = icmp6_packet(pinged, Icmpv6Repr::echo_request(0x4242, 3, data()));
  icmp.on_packet6(pkt.ip(), pkt.l4(), target);
  ASSERT_TRUE(run_until(loop, [&] { return !io.sent.empty(); }, 2 * kSeconds));
  const auto& p = io.sent[0];
  EXPECT_EQ(p.src, IpAddr(pinged));
  EXPECT_EQ(p.dst, IpAddr(kGuest6));
  EXPECT_EQ(p.proto, IpProtocol::Icmpv6);
  auto reply = Icmpv6Packet::parse(p.l4);
  ASSERT_TRUE(reply);
  EXPECT_TRUE(reply->verify_checksum(pinged, kGuest6));
  EXPECT_EQ(reply->type(), Icmpv6Type::EchoReply);
  EXPECT_EQ(reply->echo_ident(), 0x4242);
  EXPECT_EQ(reply->echo_seq(), 3);
  EXPECT_EQ(std::string(reply->payload().begin(), reply->payload().end()), kData);
  EXPECT_EQ(io.counters().icmp_echo_out, 1u);
  EXPECT_EQ(io.counters().icmp_echo_in, 1u);

  // A corrupted checksum is dropped and counted, nothing sent.
  auto bad = icmp6_packet(pinged, Icmpv6Repr::echo_request(0x4242, 4, data()));
  bad.buf.back() ^= 0xff;
  icmp.on_packet6(bad.ip(), bad.l4(), target);
  EXPECT_EQ(io.counters().drop_bad_checksum, 1u);
  EXPECT_EQ(io.counters().icmp_echo_out, 1u);
}

TEST(NatIcmp, Echo6ThroughPingSocket) {
  if (run_in_private_netns("0 2147483647", echo6_through_ping_socket)) return;
  if (!ping_sockets_allowed())
    GTEST_SKIP() << "no network namespace could be made and the host's ping_group_range forbids ping sockets";
  echo6_through_ping_socket();
}

void unavailable_is_counted_and_nothing_fabricated() {
  ASSERT_FALSE(ping_sockets_allowed());
  EventLoop loop;
  FakeGuestIo io(loop);
  IcmpTranslator icmp(io);
  const Ipv4Addr remote{{192, 0, 2, 1}};
  icmp.on_packet(icmp_packet(remote, Icmpv4Repr::echo_request(1, 1, data())).ip(), remote);
  icmp.on_packet(icmp_packet(remote, Icmpv4Repr::echo_request(1, 2, data())).ip(), remote);
  run_for(loop, 50 * kMillis);
  EXPECT_EQ(io.counters().icmp_unavailable, 2u);
  EXPECT_EQ(io.counters().icmp_echo_out, 0u);
  EXPECT_TRUE(io.sent.empty());
  EXPECT_EQ(icmp.size(), 0u);
}

TEST(NatIcmp, UnavailableIsCountedAndNothingFabricated) {
  if (run_in_private_netns("1 0", unavailable_is_counted_and_nothing_fabricated)) return;
  if (ping_sockets_allowed())
    GTEST_SKIP() << "no network namespace could be made and the host's ping_group_range permits ping sockets";
  unavailable_is_counted_and_nothing_fabricated();
}

TEST(NatIcmp, OnlyValidEchoRequestsAreTranslated) {
  EventLoop loop;
  FakeGuestIo io(loop);
  IcmpTranslator icmp(io);
  const Ipv4Addr remote{{192, 0, 2, 1}};
  icmp.on_packet(icmp_packet(remote, Icmpv4Repr::echo_reply(1, 1, data())).ip(), remote);
  EXPECT_EQ(io.counters().drop_unsupported, 1u);
  auto bad = icmp_packet(remote, Icmpv4Repr::echo_request(1, 1, data()));
  bad.buf.back() ^= 0xff;  // damages the checksum
  icmp.on_packet(bad.ip(), remote);
  EXPECT_EQ(io.counters().drop_bad_checksum, 1u);
  auto runt = icmp_packet(remote, Icmpv4Repr::echo_request(1, 1, {}));
  runt.buf.resize(Ipv4Packet::kMinHeaderLen + 4);
  store_be16(runt.buf, 2, static_cast<std::uint16_t>(runt.buf.size()));
  Ipv4PacketMut hdr = *Ipv4PacketMut::parse(runt.buf);
  hdr.fill_checksum();
  icmp.on_packet(runt.ip(), remote);
  EXPECT_EQ(io.counters().drop_malformed, 1u);
  EXPECT_TRUE(io.sent.empty());
}

}  // namespace
}  // namespace vnet::nat
