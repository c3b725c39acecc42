// Hostile and malformed control input: port specs, JSON requests, config files.
#include <gtest/gtest.h>

#include <set>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "control/config.hpp"
#include "control/request.hpp"
#include "control/server.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/sockaddr.hpp"
#include "ports/spec.hpp"

namespace vnet {
namespace {

using nlohmann::json;

TEST(PortSpec, ParsesQemuSyntax) {
  auto s = parse_port_spec("stream,server=on,addr.type=unix,addr.path=/tmp/a,,b");
  EXPECT_EQ(s.kind, "stream");
  EXPECT_EQ(s.get("server"), "on");
  EXPECT_EQ(s.get("addr.path"), "/tmp/a,b") << "a doubled comma is a literal comma";
  EXPECT_EQ(parse_port_spec(s.to_string()).get("addr.path"), "/tmp/a,b") << "to_string round-trips";
}

TEST(PortSpec, RejectsWithAClearMessage) {
  auto message = [](const char* text) {
    try {
      parse_port_spec(text);
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message("").find("empty"), std::string::npos);
  EXPECT_NE(message("bogus,x=1").find("unknown port kind 'bogus'"), std::string::npos);
  EXPECT_NE(message("stream,colour=red").find("unknown option 'colour'"), std::string::npos);
  EXPECT_NE(message("stream,server").find("KEY=VALUE"), std::string::npos);
  EXPECT_NE(message("stream,=on").find("KEY=VALUE"), std::string::npos);
  EXPECT_NE(message("tap,ifname=a,ifname=b").find("twice"), std::string::npos);
}

TEST(PortSpec, Switches) {
  EXPECT_TRUE(parse_switch("server", "on"));
  EXPECT_FALSE(parse_switch("server", "off"));
  EXPECT_THROW(parse_switch("server", "maybe"), UserError);
}

class RequestTest : public ::testing::Test {
 protected:
  EventLoop loop;
  Engine engine{loop};
  json call(const std::string& line) { return handle_request_line(engine, line); }
  std::string error_of(const std::string& line) {
    auto r = call(line);
    EXPECT_FALSE(r.value("ok", true)) << line;
    return r.value("error", "");
  }
};

TEST_F(RequestTest, MalformedRequestsAreErrorsNotCrashes) {
  EXPECT_NE(error_of("").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of("{\"cmd\":").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of("[1,2]").find("JSON object"), std::string::npos);
  EXPECT_NE(error_of("{}").find("'cmd'"), std::string::npos);
  EXPECT_NE(error_of("{\"cmd\":7}").find("'cmd'"), std::string::npos);
  EXPECT_NE(error_of("{\"cmd\":\"fly\"}").find("unknown command"), std::string::npos);
  EXPECT_NE(error_of("{\"cmd\":\"net_add\",\"name\":\"a/b\"}").find("may only hold"), std::string::npos);
  EXPECT_NE(error_of("{\"cmd\":\"net_add\",\"name\":\"a\",\"mtu\":-5}").find("mtu"), std::string::npos);
  EXPECT_NE(error_of("{\"cmd\":\"net_add\",\"name\":\"a\",\"mode\":\"ring\"}").find("--mode"), std::string::npos);
  EXPECT_NE(error_of("{\"cmd\":\"port_add\",\"net\":\"nope\",\"spec\":\"pcap,file=/dev/null\"}").find("no network"),
            std::string::npos);
  EXPECT_NE(error_of("{\"cmd\":\"port_del\",\"net\":\"x\",\"port\":0}").find("positive"), std::string::npos);
  EXPECT_NE(error_of("{\"cmd\":\"port_del\",\"net\":\"x\",\"port\":\"1\"}").find("positive"), std::string::npos);
  EXPECT_TRUE(engine.networks().empty()) << "failed requests change nothing";
}

TEST_F(RequestTest, NetworksAndPortsLifecycle) {
  EXPECT_TRUE(call(R"({"cmd":"net_add","name":"lab","mode":"hub","mtu":1500})")["ok"]);
  EXPECT_NE(error_of(R"({"cmd":"net_add","name":"lab"})").find("already exists"), std::string::npos);
  auto added = call(R"({"cmd":"port_add","net":"lab","spec":"pcap,file=/dev/null","rate":"10mbit"})");
  ASSERT_TRUE(added["ok"]) << added.dump();
  EXPECT_EQ(added["port"], 1);
  auto status = call(R"({"cmd":"status","net":"lab"})");
  EXPECT_EQ(status["networks"][0]["mode"], "hub");
  EXPECT_EQ(status["networks"][0]["ports"][0]["kind"], "pcap");
  EXPECT_NE(status["networks"][0]["ports"][0]["impairments"]["out"].get<std::string>().find("rate"), std::string::npos);
  EXPECT_NE(error_of(R"({"cmd":"port_set","net":"lab","port":1,"loss":"200%"})").find("--loss"), std::string::npos);
  EXPECT_NE(error_of(R"({"cmd":"port_set","net":"lab","port":1,"link":"sideways"})").find("--link"), std::string::npos);
  EXPECT_TRUE(call(R"({"cmd":"port_set","net":"lab","port":1,"link":"down"})")["ok"]);
  EXPECT_NE(error_of(R"({"cmd":"port_del","net":"lab","port":9})").find("no port 9"), std::string::npos);
  EXPECT_TRUE(call(R"({"cmd":"port_del","net":"lab","port":1})")["ok"]);
  EXPECT_TRUE(call(R"({"cmd":"net_del","name":"lab"})")["ok"]);
  EXPECT_TRUE(engine.networks().empty());
}

TEST_F(RequestTest, AttachHandsOutADifferentLocalMacEachTime) {
  call(R"({"cmd":"net_add","name":"lab"})");
  EXPECT_NE(error_of(R"({"cmd":"attach","net":"lab"})").find("no listener"), std::string::npos);
  const std::string path = ::testing::TempDir() + "/attach_test.sock";
  ::unlink(path.c_str());
  ASSERT_TRUE(call(R"({"cmd":"port_add","net":"lab","spec":"stream,server=on,addr.type=unix,addr.path=)" + path +
                   R"("})")["ok"]);
  std::set<std::string> macs;
  for (int i = 0; i < 50; ++i) {
    auto r = call(R"({"cmd":"attach","net":"lab"})");
    ASSERT_TRUE(r["ok"]) << r.dump();
    EXPECT_EQ(r["listener"]["path"], path);
    auto mac = wire::MacAddr::parse(r["mac"].get<std::string>());
    ASSERT_TRUE(mac);
    EXPECT_EQ(mac->octets[0] & 0x03, 0x02) << "locally administered, unicast";
    macs.insert(r["mac"].get<std::string>());
  }
  EXPECT_EQ(macs.size(), 50u);
  ::unlink(path.c_str());
}

// `port set LISTENER` means every guest that connects there: connections
// accepted before the setting take it at once, later ones when they connect.
TEST_F(RequestTest, ListenerSettingsReachItsConnections) {
  call(R"({"cmd":"net_add","name":"lab"})");
  call(R"({"cmd":"bwgroup_add","net":"lab","name":"slow","rate":"10mbit"})");
  const std::string path = ::testing::TempDir() + "/inherit_test.sock";
  ::unlink(path.c_str());
  ASSERT_TRUE(call(R"({"cmd":"port_add","net":"lab","spec":"stream,server=on,addr.type=unix,addr.path=)" + path +
                   R"("})")["ok"]);
  auto connect = [&] {
    UniqueFd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    for (int i = 0; i < 10; ++i) loop.run_once(10);
    return c;
  };
  UniqueFd early = connect();
  ASSERT_TRUE(call(R"({"cmd":"port_set","net":"lab","port":1,"link":"down","delay":"5ms","bwgroup":"slow"})")["ok"]);
  UniqueFd late = connect();
  const auto ports = call(R"({"cmd":"status","net":"lab"})")["networks"][0]["ports"];
  ASSERT_EQ(ports.size(), 3u) << ports.dump();
  for (const auto& port : ports) {
    EXPECT_EQ(port["link"], "down") << port.dump();
    EXPECT_EQ(port["bwgroup"], "slow") << port.dump();
    EXPECT_NE(port["impairments"].dump().find("delay"), std::string::npos) << port.dump();
  }
  ::unlink(path.c_str());
}

TEST_F(RequestTest, UdpTunnelNeedsBothEndsAndNoGroup) {
  call(R"({"cmd":"net_add","name":"lab"})");
  EXPECT_NE(error_of(R"({"cmd":"port_add","net":"lab","spec":"udp-tunnel,remote=127.0.0.1:9"})").find("missing option local="),
            std::string::npos);
  EXPECT_NE(error_of(R"({"cmd":"port_add","net":"lab","spec":"udp-tunnel,local=127.0.0.1:0"})").find("missing option remote="),
            std::string::npos);
  EXPECT_NE(error_of(R"({"cmd":"port_add","net":"lab","spec":"udp-tunnel,local=127.0.0.1:0,remote=230.0.0.1:5"})")
                .find("multicast"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"cmd":"port_add","net":"lab","spec":"udp-tunnel,local=127.0.0.1:0,remote=127.0.0.1:9,mcast=x"})")
                .find("unknown option 'mcast'"),
            std::string::npos);
  EXPECT_TRUE(engine.network("lab").ports().empty());
  auto added = call(R"({"cmd":"port_add","net":"lab","spec":"udp-tunnel,local=127.0.0.1:0,remote=127.0.0.1:9"})");
  ASSERT_TRUE(added["ok"]) << added.dump();
}

TEST_F(RequestTest, BadImpairmentOnAddLeavesNoPort) {
  call(R"({"cmd":"net_add","name":"lab"})");
  EXPECT_NE(error_of(R"({"cmd":"port_add","net":"lab","spec":"pcap,file=/dev/null","delay":"soon"})").find("--delay"),
            std::string::npos);
  EXPECT_TRUE(engine.network("lab").ports().empty());
}

TEST(NatRequest, DhcpReservations) {
  auto c = nat_config_from(json::parse(R"({"dhcp_reserve":["52:54:00:12:34:56=10.0.2.50"]})"));
  ASSERT_EQ(c.reservations.size(), 1u);
  EXPECT_EQ(c.reservations[0].first.to_string(), "52:54:00:12:34:56");
  EXPECT_EQ(c.reservations[0].second.to_string(), "10.0.2.50");
  for (const char* bad : {R"(["52:54:00:12:34:56"])", R"(["nomac=10.0.2.50"])", R"(["52:54:00:12:34:56=10.0.3.50"])",
                          R"(["52:54:00:12:34:56=10.0.2.2"])", R"("52:54:00:12:34:56=10.0.2.50")", "[7]"}) {
    json req = {{"dhcp_reserve", json::parse(bad)}};
    EXPECT_THROW(nat_config_from(req), UserError) << bad;
  }
}

TEST(NatRequest, FlowCaps) {
  const auto dflt = nat_config_from(json::object());
  EXPECT_EQ(dflt.max_flows, 16384u);
  EXPECT_EQ(dflt.max_flows_per_guest, 4096u);
  auto both = nat_config_from(json{{"max_flows", 50000}, {"max_flows_per_guest", 12000}});
  EXPECT_EQ(both.max_flows, 50000u);
  EXPECT_EQ(both.max_flows_per_guest, 12000u);
  // One guest's larger cap makes room for it in the network...
  auto guest = nat_config_from(json{{"max_flows_per_guest", 20000}});
  EXPECT_EQ(guest.max_flows, 20000u);
  // ...and a smaller network bounds each guest.
  auto small = nat_config_from(json{{"max_flows", 100}});
  EXPECT_EQ(small.max_flows_per_guest, 100u);
  for (const json& bad : {json{{"max_flows", 0}}, json{{"max_flows", -5}}, json{{"max_flows", "many"}},
                          json{{"max_flows_per_guest", 2000000}},
                          json{{"max_flows", 100}, {"max_flows_per_guest", 200}}}) {
    EXPECT_THROW(nat_config_from(bad), UserError) << bad.dump();
  }
}

TEST(NatRequest, Dhcp6Modes) {
  auto dflt = nat_config_from(json::object());
  EXPECT_TRUE(dflt.dhcp6);
  EXPECT_FALSE(dflt.dhcp6_managed);
  auto managed = nat_config_from(json{{"dhcp6", "managed"}});
  EXPECT_TRUE(managed.dhcp6 && managed.dhcp6_managed);
  auto off = nat_config_from(json{{"dhcp6", "off"}});
  EXPECT_FALSE(off.dhcp6 || off.dhcp6_managed);
  EXPECT_THROW(nat_config_from(json{{"dhcp6", "stateful"}}), UserError);
  EXPECT_THROW(nat_config_from(json{{"dhcp6", true}}), UserError);
}

TEST(NatRequest, Ipv6ServicesWithoutNatOnlyWhenAsked) {
  // A plain switch: no server at all.
  EXPECT_FALSE(gateway_config_from(NetworkMode::Switch, json::object()));
  // --ra on (or --ipv6 on, or --dhcp6 on) starts RA and DHCPv6 without
  // IPv4 DHCP, offering no route, no DNS and no way out.
  for (const json& req : {json{{"ra", "on"}}, json{{"ipv6", "on"}}, json{{"dhcp6", "on"}}}) {
    auto c = gateway_config_from(NetworkMode::Internal, req);
    ASSERT_TRUE(c) << req.dump();
    EXPECT_TRUE(c->ipv6 && c->ra && c->dhcp6) << req.dump();
    EXPECT_FALSE(c->dhcp || c->outside || c->dns_forwarder || c->offer_router || c->host_loopback) << req.dump();
  }
  auto ra_only = gateway_config_from(NetworkMode::Switch, json{{"ra", "on"}, {"dhcp6", "off"}});
  ASSERT_TRUE(ra_only);
  EXPECT_TRUE(ra_only->ipv6 && ra_only->ra && !ra_only->dhcp6);
  // Host-only keeps IPv4 DHCP and stays IPv4-only unless asked.
  auto hostonly = gateway_config_from(NetworkMode::Hostonly, json::object());
  ASSERT_TRUE(hostonly);
  EXPECT_TRUE(hostonly->dhcp && hostonly->host_loopback);
  EXPECT_FALSE(hostonly->ipv6);
  // On a NAT network --ra off keeps IPv6 but sends no advertisements.
  auto nat = gateway_config_from(NetworkMode::Nat, json{{"ra", "off"}});
  EXPECT_TRUE(nat->ipv6 && !nat->ra);
  EXPECT_THROW(gateway_config_from(NetworkMode::Nat, json{{"ra", "maybe"}}), UserError);
}

TEST(Config, NatListsBecomeRequestFields) {
  auto c = parse_config(R"(
[[network]]
name = "n"
mode = "nat"
dns_upstream = ["198.51.100.10", "127.0.0.53:5353"]
dhcp_reserve = ["52:54:00:12:34:56=10.0.2.50"]
)",
                        "t.toml");
  ASSERT_EQ(c.requests.size(), 1u);
  EXPECT_EQ(c.requests[0]["dns_upstream"].size(), 2u);
  EXPECT_EQ(c.requests[0]["dhcp_reserve"][0], "52:54:00:12:34:56=10.0.2.50");
  EXPECT_THROW(parse_config("[[network]]\nname = \"n\"\ndhcp_reserve = \"x\"\n", "t.toml"), UserError);
}

TEST(Config, BandwidthGroupsComeBeforeThePortsThatJoinThem) {
  auto c = parse_config(R"(
[[network]]
name = "lab"
  [[network.port]]
  spec = "pcap,file=/dev/null"
  bwgroup = "vms"
  [[network.bwgroup]]
  name = "vms"
  rate = "10mbit"
)",
                        "t.toml");
  ASSERT_EQ(c.requests.size(), 3u);
  EXPECT_EQ(c.requests[1]["cmd"], "bwgroup_add");
  EXPECT_EQ(c.requests[1]["rate"], "10mbit");
  EXPECT_EQ(c.requests[2]["bwgroup"], "vms");
  try {
    parse_config("[[network]]\nname = \"n\"\n[[network.bwgroup]]\nname = \"g\"\n", "t.toml");
    FAIL() << "a group without a rate";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("t.toml:3: a [[network.bwgroup]] needs a name and a rate"), std::string::npos) << e.what();
  }
}

TEST(Config, TranslatesToRequests) {
  auto c = parse_config(R"(
log_level = "debug"
[[network]]
name = "lab"
mode = "hub"
mtu = 1500
  [[network.port]]
  spec = "pcap,file=/dev/null"
  delay = "5ms"
)",
                        "test.toml");
  EXPECT_EQ(c.log_level, "debug");
  ASSERT_EQ(c.requests.size(), 2u);
  EXPECT_EQ(c.requests[0]["cmd"], "net_add");
  EXPECT_EQ(c.requests[0]["mtu"], 1500);
  EXPECT_EQ(c.requests[1]["cmd"], "port_add");
  EXPECT_EQ(c.requests[1]["net"], "lab");
  EXPECT_EQ(c.requests[1]["delay"], "5ms");
}

TEST(Config, ErrorsNameFileAndLine) {
  auto message = [](const char* text) {
    try {
      parse_config(text, "f.toml");
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message("[[network]]\nname = \"a\"\ncolour = \"red\"\n").find("f.toml:3: colour = \"red\": unknown key"),
            std::string::npos);
  EXPECT_NE(message("[[network]]\nmode = \"hub\"\n").find("needs a name"), std::string::npos);
  EXPECT_NE(message("[[network]]\nname = 5\n").find("expected a string"), std::string::npos);
  EXPECT_NE(message("[[network]]\nname = \"a\"\nmtu = -1\n").find("non-negative"), std::string::npos);
  EXPECT_NE(message("[[network]]\nname = \"a\"\n[[network.port]]\nlink = \"up\"\n").find("needs a spec"),
            std::string::npos);
  EXPECT_NE(message("network = 3\n").find("[[network]]"), std::string::npos);
  EXPECT_NE(message("this is not toml").find("f.toml:1"), std::string::npos);
}

TEST_F(RequestTest, UnknownFieldsAreErrors) {
  // A typo must not silently leave a default in place.
  EXPECT_NE(error_of(R"({"cmd":"net_add","name":"n","mode":"nat","subnett":"10.9.0.0/24"})")
                .find("unknown field 'subnett' in a net_add request"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"cmd":"status","nett":"x"})").find("unknown field 'nett'"), std::string::npos);
  EXPECT_NE(error_of(R"({"cmd":"net_list","all":true})").find("allowed: none"), std::string::npos);
  EXPECT_NE(error_of(R"({"cmd":"port_del","net":"x","port":1,"force":true})").find("'force'"), std::string::npos);
  EXPECT_NE(error_of(R"({"cmd":"pf_add","net":"x","rule":"tcp::1-:2","proto":"tcp"})").find("'proto'"),
            std::string::npos);
  EXPECT_TRUE(engine.networks().empty());
  // Known fields of each command still work, impairments included.
  EXPECT_TRUE(call(R"({"cmd":"net_add","name":"n","mode":"nat","subnet":"10.9.0.0/24","dhcp":"on"})")["ok"]);
  EXPECT_TRUE(call(R"({"cmd":"status","net":"n"})")["ok"]);
  EXPECT_TRUE(call(R"({"cmd":"port_add","net":"n","spec":"pcap,file=/dev/null","delay":"1ms","link":"up"})")["ok"]);
}

TEST_F(RequestTest, NatGatewayPortCannotBeDeleted) {
  ASSERT_TRUE(call(R"({"cmd":"net_add","name":"n","mode":"nat"})")["ok"]);
  const auto gw = engine.status("n")["networks"][0]["ports"][0];
  ASSERT_EQ(gw["kind"], "nat");
  const std::string err =
      error_of(R"({"cmd":"port_del","net":"n","port":)" + std::to_string(gw["id"].get<int>()) + "}");
  EXPECT_NE(err.find("is the NAT gateway"), std::string::npos) << err;
  EXPECT_NE(err.find("vnet net del n"), std::string::npos) << err;
  EXPECT_EQ(engine.network("n").ports().size(), 1u) << "the gateway is still there";
}

TEST_F(RequestTest, InetListenersDefaultToLoopback) {
  ASSERT_TRUE(call(R"({"cmd":"net_add","name":"n"})")["ok"]);
  auto a = call(R"({"cmd":"port_add","net":"n","spec":"socket,listen=:0"})");
  auto b = call(R"({"cmd":"port_add","net":"n","spec":"stream,server=on,addr.type=inet,addr.port=0"})");
  auto c = call(R"({"cmd":"port_add","net":"n","spec":"socket,listen=0.0.0.0:0"})");
  ASSERT_TRUE(a["ok"] && b["ok"] && c["ok"]) << a.dump() << b.dump() << c.dump();
  auto peer = [&](const json& added) { return engine.port("n", added["port"].get<PortId>()).peer(); };
  EXPECT_EQ(peer(a).rfind("127.0.0.1:", 0), 0u) << peer(a);
  EXPECT_EQ(peer(b).rfind("127.0.0.1:", 0), 0u) << peer(b);
  EXPECT_EQ(peer(c).rfind("0.0.0.0:", 0), 0u) << "an explicit any-address still works: " << peer(c);
}

TEST(RateLimitedLog, BurstThenSuppressedThenANewWindow) {
  log::RateLimited limited(3, 10 * kSeconds);
  const Nanos t0 = 1 * kSeconds;
  int admitted = 0;
  for (int i = 0; i < 1000; ++i) admitted += limited.admit(t0 + i * kMillis);
  EXPECT_EQ(admitted, 3);
  EXPECT_EQ(limited.suppressed_total(), 997u);
  EXPECT_TRUE(limited.admit(t0 + 11 * kSeconds)) << "a new interval admits lines again";
}

// A control client that sends requests and never reads the replies.
class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("vnet-ctl-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "control.sock").string();
    server_ = std::make_unique<ControlServer>(engine_, path_);
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  UniqueFd connect_client() {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    SockAddr addr = SockAddr::unix_path(path_);
    EXPECT_EQ(::connect(fd.get(), addr.get(), addr.length), 0);
    return fd;
  }

  EventLoop loop_;
  Engine engine_{loop_};
  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<ControlServer> server_;
};

TEST_F(ControlServerTest, SocketIsOwnerOnlyWhateverTheUmask) {
  server_.reset();
  const mode_t old = ::umask(0);
  server_ = std::make_unique<ControlServer>(engine_, path_);
  ::umask(old);
  struct stat st{};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ControlServerTest, ClientThatNeverReadsIsDroppedWithoutStallingTheLoop) {
  UniqueFd client = connect_client();
  const std::string request = "{\"cmd\":\"status\"}\n";
  std::string pending;
  Nanos slowest_turn = 0;
  bool closed = false;
  for (int turn = 0; turn < 100000 && !closed; ++turn) {
    if (pending.empty())
      for (int i = 0; i < 64; ++i) pending += request;
    ssize_t n = ::send(client.get(), pending.data(), pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) pending.erase(0, static_cast<std::size_t>(n));
    if (n < 0 && errno != EAGAIN) closed = true;  // the server hung up on us
    const Nanos before = monotonic_now();
    loop_.run_once(0);
    slowest_turn = std::max(slowest_turn, monotonic_now() - before);
    if (engine_.host().control_over_cap > 0) closed = true;
  }
  EXPECT_EQ(engine_.host().control_over_cap, 1u) << "dropped once its unread replies passed the cap";
  EXPECT_LT(slowest_turn, 200 * kMillis) << "an unread reply never waits inside the loop";
  // A well-behaved client is still served afterwards.
  UniqueFd other = connect_client();
  ASSERT_EQ(::send(other.get(), request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  std::string reply;
  for (int turn = 0; turn < 100 && reply.find('\n') == std::string::npos; ++turn) {
    loop_.run_once(10);
    char buf[4096];
    ssize_t n = ::recv(other.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) reply.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_NE(reply.find("\"ok\":true"), std::string::npos) << reply;
}

}  // namespace
}  // namespace vnet
