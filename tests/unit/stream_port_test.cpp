// QEMU stream framing over a real socketpair: the 4-byte length prefix,
// frames split across reads, and the malformed prefixes a broken or hostile
// peer can send.
#include "ports/stream.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <vector>

#include "fabric/network.hpp"
#include "support/recording_port.hpp"
#include "wire/bytes.hpp"

namespace vnet {
namespace {

using SinkPort = test_support::RecordingPort;

std::vector<std::uint8_t> framed(std::uint32_t len, std::uint8_t fill = 0, bool broadcast = true) {
  std::vector<std::uint8_t> out(4 + len, fill);
  wire::store_be32(out, 0, len);
  if (broadcast && len >= 14) {
    for (int i = 0; i < 6; ++i) out[4 + i] = 0xff;
    out[4 + 6] = 0x02;  // locally administered unicast source
  }
  return out;
}

class StreamPortTest : public ::testing::Test {
 protected:
  EventLoop loop;
  NetworkOptions options;
  std::unique_ptr<Network> net;
  SinkPort* sink = nullptr;
  StreamPort* stream = nullptr;
  int peer = -1;

  void SetUp() override {
    options.mtu = 1500;
    net = std::make_unique<Network>(loop, "t", options);
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    peer = sv[1];
    auto s = std::make_unique<StreamPort>(loop, *net, net->next_port_id(), UniqueFd(sv[0]), "test");
    stream = s.get();
    net->add_port(std::move(s));
    auto k = std::make_unique<SinkPort>(loop, *net, net->next_port_id());
    sink = k.get();
    net->add_port(std::move(k));
  }
  void TearDown() override { ::close(peer); }

  void send(const std::vector<std::uint8_t>& bytes) {
    ASSERT_EQ(::write(peer, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void pump(Nanos how_long = 30 * kMillis) {
    Timer stop(loop, [this] { loop.stop(); });
    stop.arm_in(how_long);
    loop.run();
  }
};

TEST_F(StreamPortTest, FramesSplitAcrossWritesArriveWhole) {
  auto f = framed(100, 7);
  send({f.begin(), f.begin() + 3});
  pump();
  EXPECT_TRUE(sink->sent.empty());
  send({f.begin() + 3, f.end()});
  pump();
  ASSERT_EQ(sink->sent.size(), 1u);
  EXPECT_EQ(sink->sent[0].size(), 100u);
}

TEST_F(StreamPortTest, ZeroLengthIsARuntAndTheStreamGoesOn) {
  send(framed(0));
  send(framed(60));
  pump();
  EXPECT_EQ(stream->counters().drop_runt, 1u);
  EXPECT_EQ(sink->sent.size(), 1u);
}

TEST_F(StreamPortTest, ShortFrameIsARunt) {
  send(framed(6));
  send(framed(60));
  pump();
  EXPECT_EQ(stream->counters().drop_runt, 1u);
  EXPECT_EQ(sink->sent.size(), 1u);
}

TEST_F(StreamPortTest, OversizeFrameIsSkippedAndTheNextOneArrives) {
  send(framed(4000));  // over MTU 1500, under the skippable limit
  send(framed(60));
  pump();
  EXPECT_EQ(stream->counters().drop_oversize, 1u);
  ASSERT_EQ(sink->sent.size(), 1u);
  EXPECT_EQ(sink->sent[0].size(), 60u);
}

TEST_F(StreamPortTest, HugeLengthClosesTheConnection) {
  send({0x7f, 0xff, 0xff, 0xff, 1, 2, 3});
  pump();
  EXPECT_EQ(net->find_port(1), nullptr) << "the connection's port is removed";
  EXPECT_NE(net->find_port(2), nullptr) << "other ports are untouched";
}

TEST_F(StreamPortTest, PeerHangupRemovesThePort) {
  ::shutdown(peer, SHUT_RDWR);
  pump();
  EXPECT_EQ(net->find_port(1), nullptr);
}

TEST_F(StreamPortTest, FramesToThePeerCarryTheLengthPrefix) {
  std::vector<std::uint8_t> f(60, 0xff);  // broadcast from an unknown source
  f[6] = 0x02;
  stream->deliver(f);
  pump();
  std::uint8_t buf[128];
  ASSERT_EQ(::read(peer, buf, sizeof buf), 64);
  EXPECT_EQ(wire::load_be32({buf, 4}, 0), 60u);
}

}  // namespace
}  // namespace vnet
