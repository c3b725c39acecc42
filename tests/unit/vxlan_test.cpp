// VXLAN: the header (one test per way a datagram can be wrong), the MAC
// table of remote endpoints, and the port over real loopback UDP sockets,
// where bad datagrams are counted and never stop the good ones.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <vector>

#include "fabric/network.hpp"
#include "ports/vxlan.hpp"
#include "ports/vxlan_fdb.hpp"
#include "support/recording_port.hpp"
#include "wire/vxlan.hpp"

namespace vnet {
namespace {

using test_support::RecordingPort;

std::vector<std::uint8_t> ethernet(std::uint8_t dst_last, std::uint8_t src_last, std::size_t len = 60) {
  std::vector<std::uint8_t> f(len, 0);
  const std::uint8_t base[6] = {0x52, 0x54, 0, 0, 0, 0};
  for (int i = 0; i < 6; ++i) f[i] = f[6 + i] = base[i];
  f[5] = dst_last;
  f[11] = src_last;
  f[12] = 0x08;
  return f;
}

std::vector<std::uint8_t> encapsulated(std::uint32_t vni, const std::vector<std::uint8_t>& inner) {
  std::vector<std::uint8_t> d(wire::kVxlanHeaderSize);
  wire::emit_vxlan_header(d, vni);
  d.insert(d.end(), inner.begin(), inner.end());
  return d;
}

TEST(WireVxlan, RoundTrip) {
  const auto inner = ethernet(1, 2);
  const auto d = encapsulated(0xabcdef, inner);
  EXPECT_EQ(d[0], 0x08);
  EXPECT_EQ(d[7], 0) << "reserved bits sent as zero";
  const auto p = wire::parse_vxlan(d);
  ASSERT_TRUE(p.ok()) << wire::to_string(p.error);
  EXPECT_EQ(p.vni, 0xabcdefu);
  EXPECT_EQ(std::vector<std::uint8_t>(p.inner.begin(), p.inner.end()), inner);
}

TEST(WireVxlan, EveryLengthShorterThanTheHeaderIsTruncated) {
  const auto d = encapsulated(7, ethernet(1, 2));
  for (std::size_t len = 0; len < wire::kVxlanHeaderSize; ++len)
    EXPECT_EQ(wire::parse_vxlan(wire::Bytes(d.data(), len)).error, wire::VxlanError::Truncated) << len;
}

TEST(WireVxlan, IFlagClearNamesNoNetwork) {
  auto d = encapsulated(7, ethernet(1, 2));
  d[0] = 0;
  EXPECT_EQ(wire::parse_vxlan(d).error, wire::VxlanError::NoVni);
}

TEST(WireVxlan, ReservedBitsAreIgnored) {
  auto d = encapsulated(7, ethernet(1, 2));
  d[0] |= 0xf7;
  d[1] = d[2] = d[3] = d[7] = 0xff;
  const auto p = wire::parse_vxlan(d);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.vni, 7u);
}

TEST(WireVxlan, InnerFrameShorterThanAnEthernetHeader) {
  const auto d = encapsulated(7, std::vector<std::uint8_t>(13, 0));
  EXPECT_EQ(wire::parse_vxlan(d).error, wire::VxlanError::InnerTooShort);
  EXPECT_EQ(wire::parse_vxlan(encapsulated(7, {})).error, wire::VxlanError::InnerTooShort);
}

wire::MacAddr mac(std::uint8_t last) { return {{0x52, 0x54, 0, 0, 0, last}}; }

TEST(VxlanFdb, LearnsAndForgetsAfterTheAgeingTime) {
  VxlanFdb fdb;
  EXPECT_TRUE(fdb.learn(mac(1), 3, 0));
  EXPECT_EQ(fdb.lookup(mac(1), VxlanFdb::kAge), std::optional<VxlanFdb::Remote>(3));
  EXPECT_EQ(fdb.lookup(mac(1), VxlanFdb::kAge + 1), std::nullopt);
  EXPECT_TRUE(fdb.learn(mac(1), 4, VxlanFdb::kAge + 1)) << "a MAC that moved is relearned";
  EXPECT_EQ(fdb.lookup(mac(1), VxlanFdb::kAge + 2), std::optional<VxlanFdb::Remote>(4));
}

TEST(VxlanFdb, GroupAddressesAreNeverLearned) {
  VxlanFdb fdb;
  fdb.learn(wire::MacAddr::broadcast(), 1, 0);
  fdb.learn({{0x01, 0x00, 0x5e, 0, 0, 1}}, 1, 0);
  EXPECT_EQ(fdb.size(), 0u);
  EXPECT_EQ(fdb.lookup(wire::MacAddr::broadcast(), 0), std::nullopt);
}

TEST(VxlanFdb, FullTableSweepsStaleEntriesOnly) {
  VxlanFdb fdb;
  for (std::uint32_t i = 0; i < VxlanFdb::kMaxEntries; ++i) {
    wire::MacAddr m{{0x02, 0, static_cast<std::uint8_t>(i >> 16), static_cast<std::uint8_t>(i >> 8),
                     static_cast<std::uint8_t>(i), 1}};
    ASSERT_TRUE(fdb.learn(m, 0, i < 10 ? 0 : VxlanFdb::kAge));
  }
  EXPECT_FALSE(fdb.learn(mac(1), 0, VxlanFdb::kAge)) << "full, and nothing stale yet";
  // Ten entries have aged out by now: a sweep makes room for new MACs.
  EXPECT_TRUE(fdb.learn(mac(2), 0, VxlanFdb::kAge + 2 * kSeconds));
  EXPECT_EQ(fdb.size(), VxlanFdb::kMaxEntries - 9);
}

// A UDP socket on loopback: the remote tunnel endpoint.
struct UdpEnd {
  UniqueFd fd{::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)};
  std::uint16_t port = 0;

  explicit UdpEnd(const char* host = "127.0.0.1") {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, host, &a.sin_addr);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  void send_to(std::uint16_t to, const std::vector<std::uint8_t>& d) {
    const sockaddr_in a{AF_INET, htons(to), {htonl(INADDR_LOOPBACK)}, {}};
    ASSERT_EQ(::sendto(fd.get(), d.data(), d.size(), 0, reinterpret_cast<const sockaddr*>(&a), sizeof a),
              static_cast<ssize_t>(d.size()));
  }
  std::vector<std::uint8_t> receive(std::uint16_t* from_port = nullptr) {
    std::vector<std::uint8_t> d(2048);
    sockaddr_in a{};
    socklen_t len = sizeof a;
    const auto n = ::recvfrom(fd.get(), d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&a), &len);
    d.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
    if (from_port) *from_port = ntohs(a.sin_port);
    return d;
  }
};

std::uint16_t free_udp_port() { return UdpEnd().port; }

class VxlanPortTest : public ::testing::Test {
 protected:
  static constexpr std::uint32_t kVni = 42;
  EventLoop loop;
  NetworkOptions options;
  std::unique_ptr<Network> net;
  UdpEnd remote;
  std::uint16_t local_port = free_udp_port();
  VxlanPort* port = nullptr;
  RecordingPort* guest = nullptr;

  void SetUp() override {
    options.mtu = 1500;
    net = std::make_unique<Network>(loop, "t", options);
    VxlanConfig config;
    config.vni = kVni;
    config.local = SockAddr::inet_hostport("127.0.0.1:" + std::to_string(local_port), true);
    config.remotes = {SockAddr::inet_hostport("127.0.0.1:" + std::to_string(remote.port), false)};
    auto p = std::make_unique<VxlanPort>(loop, *net, net->next_port_id(), config);
    port = p.get();
    net->add_port(std::move(p));
    auto g = std::make_unique<RecordingPort>(loop, *net, net->next_port_id());
    guest = g.get();
    net->add_port(std::move(g));
  }
  void pump() {
    Timer stop(loop, [this] { loop.stop(); });
    stop.arm_in(30 * kMillis);
    loop.run();
  }
};

TEST_F(VxlanPortTest, DatagramsOfThisVniReachTheNetwork) {
  remote.send_to(local_port, encapsulated(kVni, ethernet(0xff, 7)));
  pump();
  ASSERT_EQ(guest->sent.size(), 1u);
  EXPECT_EQ(guest->sent[0], ethernet(0xff, 7));
}

TEST_F(VxlanPortTest, BadDatagramsAreCountedAndTheNextOneArrives) {
  remote.send_to(local_port, encapsulated(kVni + 1, ethernet(0xff, 7)));  // another network
  auto no_vni = encapsulated(kVni, ethernet(0xff, 7));
  no_vni[0] = 0;
  remote.send_to(local_port, no_vni);
  remote.send_to(local_port, {0x08, 0, 0});                          // truncated
  remote.send_to(local_port, encapsulated(kVni, {1, 2, 3, 4, 5}));  // runt inside
  remote.send_to(local_port, encapsulated(kVni, ethernet(0xff, 7)));
  pump();
  EXPECT_EQ(port->counters().drop_tunnel, 1u);
  EXPECT_EQ(port->counters().drop_malformed, 2u);
  EXPECT_EQ(port->counters().drop_runt, 1u);
  EXPECT_EQ(guest->sent.size(), 1u);
}

TEST_F(VxlanPortTest, DatagramsFromAHostThatIsNoEndpointAreDropped) {
  UdpEnd stranger("127.0.0.2");
  stranger.send_to(local_port, encapsulated(kVni, ethernet(0xff, 7)));
  pump();
  EXPECT_EQ(port->counters().drop_tunnel, 1u);
  EXPECT_TRUE(guest->sent.empty());
  EXPECT_EQ(port->learned_macs(), 0u);
}

TEST_F(VxlanPortTest, FramesLeaveEncapsulatedFromAnEphemeralPort) {
  guest->inject(ethernet(9, 5));
  pump();
  std::uint16_t from = 0;
  const auto d = remote.receive(&from);
  const auto p = wire::parse_vxlan(d);
  ASSERT_TRUE(p.ok()) << wire::to_string(p.error);
  EXPECT_EQ(p.vni, kVni);
  EXPECT_EQ(std::vector<std::uint8_t>(p.inner.begin(), p.inner.end()), ethernet(9, 5));
  EXPECT_NE(from, local_port) << "the source port comes from the flow hash's socket";
}

TEST_F(VxlanPortTest, InnerSourceMacsAreLearnedPerEndpoint) {
  remote.send_to(local_port, encapsulated(kVni, ethernet(0xff, 7)));
  pump();
  EXPECT_EQ(port->learned_macs(), 1u);
}

}  // namespace
}  // namespace vnet
