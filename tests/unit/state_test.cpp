// Saved state: the file is input like any other (truncated, damaged, edited
// by hand), so each malformed case is reported with its path and line and
// the previous good copy is used; restored definitions go through the same
// checks as control requests.
#include "control/state.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "control/engine.hpp"
#include "control/request.hpp"
#include "nat/dhcp.hpp"
#include "nat/gateway.hpp"

namespace vnet {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class StateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vnet-state-test-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir + "/" + name) << text; }
  std::string good(const std::string& net) {
    return json{{"format", "vnet-state"},
                {"version", 1},
                {"definitions", json::array({{{"request", {{"cmd", "net_add"}, {"name", net}}}}})},
                {"leases", json::object()}}
        .dump(1);
  }
  static std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
  std::string dir;
  EventLoop loop;
  Engine engine{loop};
};

TEST_F(StateTest, NothingSavedYetIsNoProblem) {
  auto loaded = StateStore(dir + "/new/sub").load();
  EXPECT_TRUE(loaded.problems.empty());
  EXPECT_TRUE(loaded.state.empty());
  EXPECT_TRUE(fs::is_directory(dir + "/new/sub"));
  EXPECT_EQ(fs::status(dir + "/new/sub").permissions() & fs::perms::all, fs::perms::owner_all);
}

TEST_F(StateTest, TruncatedFileNamesPathAndLineAndFallsBackToPrevious) {
  const std::string text = good("current");
  write("state.json", text.substr(0, text.size() / 2));
  write("state.json.prev", good("previous"));
  auto loaded = StateStore(dir).load();
  const std::string report = joined(loaded.problems);
  const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<long>(text.size() / 2), '\n');
  EXPECT_NE(report.find(dir + "/state.json:" + std::to_string(line) + ": the file ends early"), std::string::npos)
      << report;
  EXPECT_NE(report.find("using the previous state"), std::string::npos) << report;
  EXPECT_EQ(loaded.state["definitions"][0]["request"]["name"], "previous");
  EXPECT_TRUE(fs::exists(dir + "/state.json.corrupt"));
}

TEST_F(StateTest, EachMalformedShapeIsReported) {
  const std::pair<const char*, const char*> cases[] = {
      {"[1, 2]", "not a vnet state file"},
      {R"({"format": "other", "version": 1, "definitions": []})", "not a vnet state file"},
      {R"({"format": "vnet-state", "version": 9, "definitions": []})", "version 9"},
      {R"({"format": "vnet-state", "version": "1", "definitions": []})", "not a vnet state file"},
      {R"({"format": "vnet-state", "version": 1, "definitions": {}})", "must be a list"},
      {R"({"format": "vnet-state", "version": 1, "definitions": [], "leases": []})", "must be a list"},
      {"{\n\"format\": \"vnet-state\",\n x}", "state.json:3: syntax error"},
      {"", "the file ends early"},
      // Found by fuzz_state: a number no integer or double holds threw past the parse.
      {R"({"format": "vnet-state", "version": 1, "definitions": [], "x": 4102444E800})", "number overflow"},
      // Also found by fuzz_state: a "format" that is not a string (a later duplicate key wins).
      {R"({"format": "vnet-state", "version": 1, "definitions": [], "format": {}})", "not a vnet state file"},
  };
  for (const auto& [text, expected] : cases) {
    write("state.json", text);
    fs::remove(dir + "/state.json.prev");
    auto loaded = StateStore(dir).load();
    const std::string report = joined(loaded.problems);
    EXPECT_NE(report.find(expected), std::string::npos) << text << "\n" << report;
    EXPECT_NE(report.find("starting without saved definitions"), std::string::npos) << report;
    EXPECT_TRUE(loaded.state.empty());
  }
}

TEST_F(StateTest, SaveKeepsThePreviousGoodCopyFromMemory) {
  StateStore store(dir);
  store.save(good("one"), "");
  store.save(good("two"), good("one"));
  write("state.json", "garbage");  // damaged on disk after the save
  store.save(good("three"), good("two"));
  std::ifstream prev(dir + "/state.json.prev");
  EXPECT_EQ(json::parse(prev)["definitions"][0]["request"]["name"], "two");
  EXPECT_FALSE(fs::exists(dir + "/state.json.tmp"));
}

TEST_F(StateTest, RestoreRecordsAndReportsButRunsOnlyDefinitions) {
  Persistence p(engine, StateStore(dir));
  engine.set_persistence(&p);
  json saved = json::parse(good("lab"));
  saved["definitions"].push_back({{"request", {{"cmd", "shutdown"}}}});
  saved["definitions"].push_back("junk");
  saved["definitions"].push_back({{"request", {{"cmd", "port_add"}, {"net", "lab"}, {"spec", "bogus"}}}});
  const std::string report = joined(p.restore(saved));
  EXPECT_TRUE(engine.networks().count("lab"));
  EXPECT_NE(report.find("not a saved definition"), std::string::npos) << report;
  EXPECT_NE(report.find("could not restore port_add"), std::string::npos) << report;
  // The one that failed stays in the state: nothing is dropped silently.
  std::ifstream in(dir + "/state.json");
  const json written = json::parse(in);
  ASSERT_EQ(written["definitions"].size(), 2u) << written.dump();
  EXPECT_EQ(written["definitions"][1]["request"]["spec"], "bogus");
  engine.set_persistence(nullptr);
}

TEST_F(StateTest, TransientNetworksAndTheirPortsAreNotSaved) {
  Persistence p(engine, StateStore(dir));
  engine.set_persistence(&p);
  p.restore(json::object());
  auto call = [&](const json& r) { ASSERT_TRUE(handle_request(engine, r)["ok"]) << r.dump(); };
  call({{"cmd", "net_add"}, {"name", "keep"}, {"mode", "nat"}});
  call({{"cmd", "net_add"}, {"name", "tmp"}, {"transient", true}});
  call({{"cmd", "port_add"}, {"net", "tmp"}, {"spec", "pcap,file=/dev/null"}});
  call({{"cmd", "pf_add"}, {"net", "keep"}, {"rule", "udp:127.0.0.1:38877-:53"}});
  EXPECT_FALSE(handle_request(engine, {{"cmd", "net_add"}, {"name", "x"}, {"transient", "yes"}})["ok"]);
  EXPECT_FALSE(engine.networks().count("x")) << "a bad transient field adds nothing";
  std::ifstream in(dir + "/state.json");
  const json written = json::parse(in);
  ASSERT_EQ(written["definitions"].size(), 2u) << written.dump();
  EXPECT_EQ(written["definitions"][0]["request"]["name"], "keep");
  EXPECT_EQ(written["definitions"][1]["request"]["cmd"], "pf_add");
  engine.set_persistence(nullptr);
}

TEST_F(StateTest, BandwidthGroupsAreSavedBeforeThePortsThatNameThem) {
  Persistence p(engine, StateStore(dir));
  engine.set_persistence(&p);
  p.restore(json::object());
  auto call = [&](const json& r) { const json reply = handle_request(engine, r); ASSERT_TRUE(reply["ok"]) << r.dump() << reply.dump(); };
  call({{"cmd", "net_add"}, {"name", "lab"}});
  call({{"cmd", "port_add"}, {"net", "lab"}, {"spec", "pcap,file=/dev/null"}});
  call({{"cmd", "bwgroup_add"}, {"net", "lab"}, {"name", "vms"}, {"rate", "10mbit"}});
  call({{"cmd", "port_set"}, {"net", "lab"}, {"port", 1u}, {"bwgroup", "vms"}});
  call({{"cmd", "bwgroup_add"}, {"net", "lab"}, {"name", "vms"}, {"rate", "20mbit"}});  // a new limit
  std::ifstream in(dir + "/state.json");
  const json saved = json::parse(in);
  const json& defs = saved["definitions"];
  ASSERT_EQ(defs.size(), 3u) << saved.dump();
  EXPECT_EQ(defs[1]["request"]["cmd"], "bwgroup_add");
  EXPECT_EQ(defs[1]["request"]["rate"], "20mbit");
  EXPECT_EQ(defs[2]["request"]["bwgroup"], "vms");
  engine.set_persistence(nullptr);

  // Restored into a fresh engine, the port is back in its group.
  EventLoop loop2;
  Engine restored{loop2};
  Persistence p2(restored, StateStore(dir + "/again"));
  restored.set_persistence(&p2);
  EXPECT_EQ(joined(p2.restore(saved)), "");
  auto group = restored.network("lab").find_bandwidth_group("vms");
  ASSERT_TRUE(group);
  EXPECT_EQ(group->rate_bps, 20'000'000u);
  EXPECT_EQ(restored.network("lab").find_port(1)->bandwidth_group(), group);
  restored.set_persistence(nullptr);
}

TEST_F(StateTest, LeaseImportSkipsMalformedExpiredAndTakenEntries) {
  ASSERT_TRUE(handle_request(engine, {{"cmd", "net_add"}, {"name", "n"}, {"mode", "nat"}})["ok"]);
  nat::DhcpServer* dhcp = nullptr;
  for (const auto& [id, port] : engine.network("n").ports())
    if (auto* gw = dynamic_cast<nat::NatGateway*>(port.get())) dhcp = &gw->dhcp();
  ASSERT_NE(dhcp, nullptr);
  const long later = static_cast<long>(::time(nullptr)) + 3600;
  auto lease = [&](const char* key, const char* mac, const char* ip, long expires) {
    return json{{"key", key}, {"mac", mac}, {"ip", ip}, {"hostname", "h\x01st"}, {"expires_unix_s", expires}};
  };
  json saved = json::array({
      lease("6d525400000001", "52:54:00:00:00:01", "10.0.2.15", later),  // good
      lease("6d525400000002", "52:54:00:00:00:02", "10.0.2.15", later),  // address taken
      lease("6d525400000003", "52:54:00:00:00:03", "10.0.2.16", 1000),   // expired
      lease("zz", "52:54:00:00:00:04", "10.0.2.17", later),              // bad key
      lease("6d525400000005", "nope", "10.0.2.18", later),               // bad MAC
      lease("6d525400000006", "52:54:00:00:00:06", "10.0.3.1", later),   // outside the network
      lease("6d525400000007", "52:54:00:00:00:07", "10.0.2.2", later),   // the gateway
      lease("7852", "52:54:00:00:00:08", "10.0.2.19", later),            // key kind unknown
      json("string"),
      json{{"key", 5}},
  });
  EXPECT_EQ(dhcp->import_leases(saved), 1u);
  EXPECT_EQ(dhcp->import_leases(json::object()), 0u);
  const json exported = dhcp->export_leases();
  ASSERT_EQ(exported.size(), 1u);
  EXPECT_EQ(exported[0]["ip"], "10.0.2.15");
  EXPECT_EQ(exported[0]["hostname"], "h-st");
  EXPECT_NEAR(exported[0]["expires_unix_s"].get<double>(), static_cast<double>(later), 2);
}

}  // namespace
}  // namespace vnet
