// Port forward rules: the parser (both forms, defaults, one test per
// malformed rule) and the forwarder with real loopback sockets.
#include "nat/portfwd.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.hpp"
#include "nat/tcp.hpp"
#include "nat/udp.hpp"
#include "support/fake_guest_io.hpp"
#include "wire/udp.hpp"

namespace vnet::nat {
namespace {

using namespace vnet::wire;

TEST(ForwardRuleParse, HostfwdFull) {
  auto r = parse_forward_rule("udp:127.0.0.2:5353-10.0.2.20:53");
  EXPECT_EQ(r.proto, ForwardProto::Udp);
  EXPECT_EQ(r.host_addr, (Ipv4Addr{{127, 0, 0, 2}}));
  EXPECT_EQ(r.host_port, 5353);
  ASSERT_TRUE(r.guest_addr);
  EXPECT_EQ(*r.guest_addr, (Ipv4Addr{{10, 0, 2, 20}}));
  EXPECT_EQ(r.guest_port, 53);
  EXPECT_EQ(r.name, "udp-127.0.0.2-5353");
  EXPECT_EQ(r.to_string(), "udp:127.0.0.2:5353-10.0.2.20:53");
}

TEST(ForwardRuleParse, HostfwdDefaults) {
  auto r = parse_forward_rule(":2222-:22");
  EXPECT_EQ(r.proto, ForwardProto::Tcp);
  EXPECT_EQ(r.host_addr, (Ipv4Addr{{127, 0, 0, 1}}));  // loopback, not 0.0.0.0
  EXPECT_EQ(r.host_port, 2222);
  EXPECT_FALSE(r.guest_addr);
  EXPECT_EQ(r.guest_port, 22);
  EXPECT_EQ(r.name, "tcp-2222");
  EXPECT_EQ(parse_forward_rule("tcp:127.0.0.1:2222-:22").name, "tcp-2222");
  EXPECT_EQ(parse_forward_rule("  tcp::2222-:22 ").host_port, 2222);
  EXPECT_EQ(parse_forward_rule("::2222-:22").proto, ForwardProto::Tcp);
  EXPECT_EQ(parse_forward_rule("127.0.0.1:2222-:22").host_port, 2222);
}

TEST(ForwardRuleParse, IPv6HostAndGuest) {
  auto r = parse_forward_rule("tcp:[::1]:2222-:22");  // QEMU's hostfwd=tcp:[::1]:2222-:22
  EXPECT_EQ(r.host_addr, IpAddr(Ipv6Addr::loopback()));
  EXPECT_FALSE(r.guest_addr);
  EXPECT_EQ(r.name, "tcp6-2222");
  EXPECT_EQ(r.to_string(), "tcp:[::1]:2222-:22");
  auto g = parse_forward_rule("udp:[fd00::1]:5353-[fec0::20]:53");
  EXPECT_EQ(g.host_addr, *IpAddr::parse("fd00::1"));
  EXPECT_EQ(*g.guest_addr, *IpAddr::parse("fec0::20"));
  EXPECT_EQ(g.name, "udp-fd00__1-5353");
  EXPECT_EQ(parse_forward_rule(g.to_string()).guest_addr, g.guest_addr);
  // VirtualBox's --port-forward-6 rules, colon and comma forms.
  auto v = parse_forward_rule("ssh6:tcp:[::1]:2222:[fec0::15]:22");
  EXPECT_EQ((v.name, v.host_port, v.guest_port), (std::string("ssh6"), 2222, 22));
  EXPECT_EQ(*v.guest_addr, *IpAddr::parse("fec0::15"));
  EXPECT_EQ(parse_forward_rule("ssh6,tcp,::1,2222,fec0::15,22").guest_addr, v.guest_addr);
}

TEST(ForwardRuleParse, HostfwdAllAddresses) {
  auto r = parse_forward_rule("tcp:0.0.0.0:8080-:80");
  EXPECT_EQ(r.host_addr, Ipv4Addr{});
  EXPECT_EQ(r.name, "tcp-0.0.0.0-8080");
}

TEST(ForwardRuleParse, VirtualBoxForm) {
  auto r = parse_forward_rule("ssh:tcp:[127.0.0.1]:2222:[10.0.2.15]:22");
  EXPECT_EQ(r.name, "ssh");
  EXPECT_EQ(r.proto, ForwardProto::Tcp);
  EXPECT_EQ(r.host_port, 2222);
  EXPECT_EQ(*r.guest_addr, (Ipv4Addr{{10, 0, 2, 15}}));
  EXPECT_EQ(r.guest_port, 22);
}

TEST(ForwardRuleParse, VirtualBoxEmptyBrackets) {
  auto r = parse_forward_rule("dns:udp:[]:5300:[]:53");
  EXPECT_EQ(r.proto, ForwardProto::Udp);
  EXPECT_EQ(r.host_addr, (Ipv4Addr{{127, 0, 0, 1}}));
  EXPECT_FALSE(r.guest_addr);
}

TEST(ForwardRuleParse, VirtualBoxCommaForm) {
  auto r = parse_forward_rule("guestssh,tcp,,2222,,22");
  EXPECT_EQ(r.name, "guestssh");
  EXPECT_EQ(r.host_port, 2222);
  EXPECT_EQ(r.guest_port, 22);
}

void bad(const char* rule, const char* fragment) {
  try {
    parse_forward_rule(rule);
    ADD_FAILURE() << rule << " was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << rule << ": " << e.what();
  }
}

TEST(ForwardRuleMalformed, Empty) { bad("", "empty rule"); }
TEST(ForwardRuleMalformed, MissingHostPort) { bad("tcp:127.0.0.1:-:22", "missing host port"); }
TEST(ForwardRuleMalformed, MissingGuestPort) { bad("tcp::2222-:", "missing guest port"); }
TEST(ForwardRuleMalformed, PortZero) { bad("tcp::0-:22", "out of range"); }
TEST(ForwardRuleMalformed, Port70000) { bad("tcp::2222-:70000", "out of range"); }
TEST(ForwardRuleMalformed, PortTooLong) { bad("tcp::000002222-:22", "bad host port"); }
TEST(ForwardRuleMalformed, NegativePort) { bad("tcp::2222-:-22", "bad guest port"); }
TEST(ForwardRuleMalformed, BadHostAddress) { bad("tcp:300.1.1.1:2222-:22", "bad host address"); }
TEST(ForwardRuleMalformed, BadGuestAddress) { bad("tcp::2222-10.0.2:22", "bad guest address"); }
TEST(ForwardRuleMalformed, HostnameNotAllowed) { bad("tcp:localhost:2222-:22", "bad host address"); }
TEST(ForwardRuleMalformed, UnknownProto) { bad("sctp::2222-:22", "unknown protocol"); }
TEST(ForwardRuleMalformed, VirtualBoxEmptyProto) { bad("n::[]:1:[]:2", "unknown protocol"); }
TEST(ForwardRuleMalformed, MissingDash) { bad("tcp:127.0.0.1:2222:22", "missing '-'"); }
TEST(ForwardRuleMalformed, StrayCharsInPort) { bad("tcp::2222-:22x", "bad guest port"); }
TEST(ForwardRuleMalformed, StrayField) { bad("tcp::2222-:22:", "number of"); }
TEST(ForwardRuleMalformed, TooFewFields) { bad("tcp:2222", "number of"); }
TEST(ForwardRuleMalformed, UnbalancedBracket) { bad("n:tcp:[127.0.0.1:2222:[]:22", "brackets"); }
TEST(ForwardRuleMalformed, BadName) { bad("s h:tcp:[]:2222:[]:22", "bad rule name"); }
TEST(ForwardRuleMalformed, CommaFieldCount) { bad("a,tcp,,1,2", "6 fields"); }
TEST(ForwardRuleMalformed, UnbracketedIPv6) { bad("tcp:fec0::1:2222-:22", "IPv6 addresses in brackets"); }
TEST(ForwardRuleMalformed, BadIPv6Guest) { bad("tcp:[::1]:2222-[fec0::zz]:22", "bad guest address"); }

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// A port nobody listens on right now (bound once by the kernel, released).
std::uint16_t free_port(int type) {
  UniqueFd s(::socket(AF_INET, type, 0));
  sockaddr_in a = loopback(0);
  EXPECT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

int try_connect(std::uint16_t port) {
  UniqueFd c(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = loopback(port);
  return ::connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 ? 0 : errno;
}

class PortForwarderTest : public ::testing::Test {
 protected:
  testing::FakeGuestIo io;
  TcpTranslator tcp{io};
  UdpTranslator udp{io};
  PortForwarder pf{io, tcp, udp};
};

TEST_F(PortForwarderTest, TcpAcceptReachesTranslatorAndDeleteCloses) {
  const std::uint16_t port = free_port(SOCK_STREAM);
  const std::string rule = "tcp:127.0.0.1:" + std::to_string(port) + "-:22";
  EXPECT_EQ(pf.add(rule), "tcp-" + std::to_string(port));
  ASSERT_EQ(try_connect(port), 0);
  io.run_for(50 * kMillis);
  auto list = pf.list();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["connections"], 1);
  EXPECT_EQ(list[0]["guest"], "10.0.2.15:22");
  EXPECT_EQ(list[0]["host"], "127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(list[0]["proto"], "tcp");

  pf.remove("tcp-" + std::to_string(port));
  EXPECT_EQ(pf.size(), 0u);
  EXPECT_EQ(try_connect(port), ECONNREFUSED);
}

TEST_F(PortForwarderTest, PortInUseIsAClearError) {
  const std::uint16_t port = free_port(SOCK_STREAM);
  UniqueFd busy(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = loopback(port);
  ASSERT_EQ(::bind(busy.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(busy.get(), 1), 0);
  try {
    pf.add("tcp::" + std::to_string(port) + "-:22");
    FAIL() << "accepted a busy port";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), "127.0.0.1:" + std::to_string(port) + " is already in use");
  }
  EXPECT_EQ(pf.size(), 0u);
}

TEST_F(PortForwarderTest, DuplicatesRefused) {
  const std::uint16_t port = free_port(SOCK_STREAM);
  const std::string p = std::to_string(port);
  pf.add("a:tcp:[]:" + p + ":[]:22");
  EXPECT_THROW(pf.add("a:tcp:[]:" + std::to_string(free_port(SOCK_STREAM)) + ":[]:22"), UserError);  // same name
  EXPECT_THROW(pf.add("b:tcp:[127.0.0.1]:" + p + ":[]:80"), UserError);  // same host address
  EXPECT_EQ(pf.size(), 1u);
}

TEST_F(PortForwarderTest, GuestOutsideNetworkRefused) {
  EXPECT_THROW(pf.add("tcp::" + std::to_string(free_port(SOCK_STREAM)) + "-192.168.1.5:22"), UserError);
  EXPECT_THROW(pf.add("tcp::" + std::to_string(free_port(SOCK_STREAM)) + "-10.0.2.2:22"), UserError);
  EXPECT_EQ(pf.size(), 0u);
}

TEST_F(PortForwarderTest, RemoveUnknownThrows) { EXPECT_THROW(pf.remove("nope"), UserError); }

TEST_F(PortForwarderTest, UdpDatagramReachesGuest) {
  const std::uint16_t port = free_port(SOCK_DGRAM);
  const std::string name = pf.add("udp::" + std::to_string(port) + "-10.0.2.16:5353");
  UniqueFd c(::socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in a = loopback(port);
  ASSERT_EQ(::sendto(c.get(), "ping", 4, 0, reinterpret_cast<sockaddr*>(&a), sizeof a), 4);
  io.run_for(50 * kMillis);
  EXPECT_EQ(pf.list()[0]["datagrams"], 1);
  ASSERT_EQ(io.sent.size(), 1u);
  EXPECT_EQ(io.sent[0].dst, (Ipv4Addr{{10, 0, 2, 16}}));
  EXPECT_EQ(io.sent[0].dport, 5353);
  EXPECT_EQ(std::string(io.sent[0].payload.begin(), io.sent[0].payload.end()), "ping");
  pf.remove(name);
}

}  // namespace
}  // namespace vnet::nat
