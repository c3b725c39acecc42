// Hostile and malformed control input: port specs, JSON requests, config files.
#include <gtest/gtest.h>

#include "control/config.hpp"
#include "control/request.hpp"
#include "core/error.hpp"
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
  EXPECT_NE(message("[[network]]\nname = \"a\"\ncolour = \"red\"\n").find("f.toml:3: unknown key 'colour'"),
            std::string::npos);
  EXPECT_NE(message("[[network]]\nmode = \"hub\"\n").find("needs a name"), std::string::npos);
  EXPECT_NE(message("[[network]]\nname = 5\n").find("must be a string"), std::string::npos);
  EXPECT_NE(message("[[network]]\nname = \"a\"\nmtu = -1\n").find("non-negative"), std::string::npos);
  EXPECT_NE(message("[[network]]\nname = \"a\"\n[[network.port]]\nlink = \"up\"\n").find("needs a spec"),
            std::string::npos);
  EXPECT_NE(message("network = 3\n").find("[[network]]"), std::string::npos);
  EXPECT_NE(message("this is not toml").find("f.toml:1"), std::string::npos);
}

}  // namespace
}  // namespace vnet
