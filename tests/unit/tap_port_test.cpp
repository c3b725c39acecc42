// How a TAP port reads its device, with a SOCK_SEQPACKET socketpair in the
// TAP's place (one frame per read, behind a virtio-net header, like a TAP):
// a lone frame per wake-up costs one read, and a burst behind it is still
// read whole in the next loop turn; a large frame toward the device is
// written at once, small ones at the round's flush, in order.
#include "ports/tap.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <vector>

#include "fabric/network.hpp"
#include "fabric/offload.hpp"
#include "support/recording_port.hpp"

namespace vnet {
namespace {

// The protected constructor takes an open device; no /dev/net/tun needed.
class SocketTap : public TapPort {
 public:
  SocketTap(EventLoop& loop, Network& net, PortId id, UniqueFd device)
      : TapPort(loop, net, id, "test0", "", std::move(device)) {}
};

class TapPortTest : public ::testing::Test {
 protected:
  EventLoop loop;
  NetworkOptions options;
  std::unique_ptr<Network> net;
  test_support::RecordingPort* sink = nullptr;
  UniqueFd peer;

  void SetUp() override {
    options.mtu = 9000;
    net = std::make_unique<Network>(loop, "t", options);
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    peer.reset(sv[1]);
    net->add_port(std::make_unique<SocketTap>(loop, *net, net->next_port_id(), UniqueFd(sv[0])));
    auto k = std::make_unique<test_support::RecordingPort>(loop, *net, net->next_port_id());
    sink = k.get();
    net->add_port(std::move(k));
  }

  // One broadcast frame from the TAP's side, behind a plain virtio-net header.
  void guest_sends(std::uint8_t tag) {
    std::vector<std::uint8_t> record(Offload::kHeaderLen + 60, 0);
    std::uint8_t* frame = record.data() + Offload::kHeaderLen;
    for (int i = 0; i < 6; ++i) frame[i] = 0xff;
    frame[6] = 0x02;
    frame[11] = 0x01;
    frame[12] = 0x88;  // an EtherType nobody interprets
    frame[13] = 0xb5;
    frame[14] = tag;
    ASSERT_EQ(::send(peer.get(), record.data(), record.size(), 0), static_cast<ssize_t>(record.size()));
  }
  std::size_t delivered() const { return sink->sent.size(); }

  // A broadcast frame of `size` bytes from the other port, toward the TAP.
  void network_sends(std::size_t size, std::uint8_t tag) {
    std::vector<std::uint8_t> frame(size, 0);
    for (int i = 0; i < 6; ++i) frame[i] = 0xff;
    frame[6] = 0x02;
    frame[12] = 0x88;
    frame[13] = 0xb5;
    frame[14] = tag;
    sink->inject(frame);
  }
  // Sizes and tags of the records the device has been given so far.
  std::vector<std::pair<std::size_t, std::uint8_t>> device_got() {
    std::vector<std::pair<std::size_t, std::uint8_t>> got;
    std::vector<std::uint8_t> buf(Offload::kHeaderLen + 10000);
    for (;;) {
      ssize_t n = ::recv(peer.get(), buf.data(), buf.size(), 0);
      if (n <= 0) return got;
      got.emplace_back(static_cast<std::size_t>(n) - Offload::kHeaderLen, buf[Offload::kHeaderLen + 14]);
    }
  }
};

using Got = std::vector<std::pair<std::size_t, std::uint8_t>>;

TEST_F(TapPortTest, ALargeFrameIsWrittenAtOnceWithoutWaitingForTheFlush) {
  network_sends(8000, 1);
  EXPECT_EQ(device_got(), (Got{{8000, 1}}));  // no loop turn in between: not queued
  loop.run_once(0);
  EXPECT_EQ(device_got(), Got{});  // and not written twice
}

TEST_F(TapPortTest, SmallFramesWaitForTheRoundsFlushAndALargeOneStaysBehindThem) {
  network_sends(60, 1);
  network_sends(100, 2);
  network_sends(8000, 3);  // behind queued frames: queued too, in order
  EXPECT_EQ(device_got(), Got{});
  loop.run_once(0);
  EXPECT_EQ(device_got(), (Got{{60, 1}, {100, 2}, {8000, 3}}));
}

TEST_F(TapPortTest, ALoneFramePerWakeUpIsReadWithoutADrainingRead) {
  guest_sends(1);
  EXPECT_EQ(loop.run_once(100), 1);
  EXPECT_EQ(delivered(), 1u);  // read until empty: one frame
  loop.run_once(0);            // an unrelated turn in between, as in request/response
  guest_sends(2);
  guest_sends(3);
  EXPECT_EQ(loop.run_once(100), 1);
  // After a lone frame the port reads one and leaves the rest to the next
  // turn: the proof that it did not read until empty.
  EXPECT_EQ(delivered(), 2u);
  EXPECT_EQ(loop.run_once(100), 1);
  EXPECT_EQ(delivered(), 3u);
}

TEST_F(TapPortTest, ABurstBehindALoneFrameIsReadWholeInTheNextTurn) {
  guest_sends(1);
  loop.run_once(100);
  loop.run_once(0);
  for (std::uint8_t i = 2; i < 40; ++i) guest_sends(i);
  loop.run_once(100);  // lone mode: one frame
  loop.run_once(100);  // ready again in the very next turn: read until empty
  ASSERT_EQ(delivered(), 39u);
  for (std::size_t i = 0; i < delivered(); ++i) EXPECT_EQ(sink->sent[i][14], i + 1) << "frame " << i;
  EXPECT_EQ(loop.run_once(0), 0);
}

}  // namespace
}  // namespace vnet
