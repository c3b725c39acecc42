// Config-file mistakes are reported as file:line: key = value: problem, in
// the file's own terms (never as the CLI flag that the key becomes).
#include <gtest/gtest.h>

#include "control/config.hpp"
#include "control/engine.hpp"
#include "core/error.hpp"

namespace vnet {
namespace {

class ConfigErrorTest : public ::testing::Test {
 protected:
  EventLoop loop;
  Engine engine{loop};
  // The one-line error of parsing then applying `text` as vnet.toml.
  std::string error_of(const std::string& text) {
    try {
      apply_config(engine, parse_config(text, "vnet.toml"));
    } catch (const UserError& e) {
      return e.what();
    }
    return "accepted";
  }
};

TEST_F(ConfigErrorTest, BadValueNamesLineKeyAndQuotedChoices) {
  EXPECT_EQ(error_of("[[network]]\nname = \"lab\"\nmode = \"swich\"\n"),
            "vnet.toml:3: mode = \"swich\": expected \"switch\", \"hub\", \"nat\", \"internal\", \"hostonly\", \"bridged\" or \"kernel-nat\"");
  EXPECT_EQ(error_of("[[network]]\nname = \"n\"\nmode = \"nat\"\nsubnet = \"10.0.0.0/33\"\n"),
            "vnet.toml:4: subnet = \"10.0.0.0/33\": expected an IPv4 network such as 10.0.2.0/24 (prefix 8 to 30)");
  EXPECT_EQ(error_of("[[network]]\nname = \"m\"\nmtu = 70000\n"), "vnet.toml:3: mtu = 70000: expected 68..65535");
  EXPECT_EQ(error_of("[[network]]\nname = \"p\"\n[[network.port]]\nspec = \"pcap,file=/dev/null\"\n"
                     "direction = \"sideways\"\n"),
            "vnet.toml:5: direction = \"sideways\": expected \"in\", \"out\" or \"both\"");
  EXPECT_EQ(error_of("[[network]]\nname = \"q\"\nmode = \"nat\"\ngateway = \"10.0.2.3\"\n"),
            "vnet.toml:4: gateway = \"10.0.2.3\": gateway and dns must differ");
}

TEST_F(ConfigErrorTest, UnknownKeySuggestsTheNearOne) {
  EXPECT_EQ(error_of("[[network]]\nname = \"lab\"\nmdoe = \"hub\"\n"),
            "vnet.toml:3: mdoe = \"hub\": unknown key in a [[network]] table (did you mean mode?)");
  const std::string far = error_of("\n[[network]]\nname = \"lab\"\ncolour = \"red\"\n");
  EXPECT_EQ(far.rfind("vnet.toml:4: colour = \"red\": unknown key in a [[network]] table (known keys: name, mode", 0), 0u)
      << far;
  EXPECT_EQ(error_of("log_levle = \"info\"\n"),
            "vnet.toml:1: log_levle = \"info\": unknown key in a top-level table (did you mean log_level?)");
}

TEST_F(ConfigErrorTest, WrongTypeSaysWhatToWrite) {
  EXPECT_EQ(error_of("[[network]]\nname = \"lab\"\nmtu = \"big\"\n"),
            "vnet.toml:3: mtu = \"big\": expected a non-negative integer (no quotes)");
  EXPECT_EQ(error_of("[[network]]\nname = 5\n"), "vnet.toml:2: name = 5: expected a string (in double quotes)");
  EXPECT_EQ(error_of("[[network]]\nname = \"n\"\nmode = \"nat\"\ndns_upstream = \"1.2.3.4\"\n"),
            "vnet.toml:4: dns_upstream = \"1.2.3.4\": expected a list of strings, e.g. [\"a\", \"b\"]");
}

TEST_F(ConfigErrorTest, BadPortSpecAndRuleNameTheirLine) {
  const std::string spec = error_of("[[network]]\nname = \"lab\"\n  [[network.port]]\n  spec = \"bogus,x=1\"\n");
  EXPECT_EQ(spec.rfind("vnet.toml:4: spec = \"bogus,x=1\": unknown port kind 'bogus'", 0), 0u) << spec;
  const std::string rule =
      error_of("[[network]]\nname = \"n\"\nmode = \"nat\"\n[[network.forward]]\nrule = \"tcp:nonsense\"\n");
  EXPECT_EQ(rule.rfind("vnet.toml:5: rule = \"tcp:nonsense\": ", 0), 0u) << rule;
  const std::string listed = error_of("[[network]]\nname = \"n2\"\nmode = \"nat\"\nforwards = [\n  \"udp:x\",\n]\n");
  EXPECT_EQ(listed.rfind("vnet.toml:5: forwards = ", 0), 0u) << listed;
}

TEST_F(ConfigErrorTest, DuplicateNetworkNamesBothLines) {
  EXPECT_EQ(error_of("[[network]]\nname = \"lab\"\n\n[[network]]\nname = \"lab\"\n"),
            "vnet.toml:5: name = \"lab\": network \"lab\" is already declared at line 2");
  EXPECT_TRUE(engine.networks().empty()) << "a file with a mistake applies nothing";
}

TEST_F(ConfigErrorTest, BuiltInConfigsKeepTheRequestsOwnWords) {
  Config c;
  c.requests.push_back({{"cmd", "net_add"}, {"name", "x"}, {"mode", "ring"}});
  try {
    apply_config(engine, c);
    FAIL() << "accepted";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), "--mode ring: expected switch, hub, nat, internal, hostonly, bridged or kernel-nat");
  }
}

}  // namespace
}  // namespace vnet
