// Work deferred with EventLoop::post must not outlive what it points at:
// `vnet net del` in the same event batch as a peer's disconnect used to run
// the port's "remove me later" task on the freed network (found by ASan).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/socket.h>

#include "control/engine.hpp"
#include "core/event_loop.hpp"
#include "ports/stream.hpp"

namespace vnet {
namespace {

// A pipe made readable: its handler runs in the same batch as other ready fds.
struct Trigger {
  UniqueFd read_end, write_end;
  Trigger() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
  }
  void fire() { EXPECT_EQ(::write(write_end.get(), "x", 1), 1); }
};

// A stream peer on one end of a socketpair, plugged into network `net`.
UniqueFd plug_stream_peer(EventLoop& loop, Network& net) {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
  net.add_port(std::make_unique<StreamPort>(loop, net, net.next_port_id(), UniqueFd(sv[0]), "test peer"));
  return UniqueFd(sv[1]);
}

TEST(PostedWork, NetworkDeletedInTheBatchWherePeerLeaves) {
  EventLoop loop;
  Engine engine(loop);
  Network& net = engine.add_network("doomed", NetworkOptions{});
  UniqueFd peer = plug_stream_peer(loop, net);
  Trigger trigger;
  loop.add(trigger.read_end.get(), EPOLLIN, [&](std::uint32_t) {
    engine.del_network("doomed");
    loop.stop();
  });
  // The peer hangs up first, so its EOF is handled first in the batch and
  // posts the port's removal; then the network is deleted in the same batch.
  peer.reset();
  trigger.fire();
  loop.run();  // under ASan, a use-after-free here fails the test
  EXPECT_TRUE(engine.networks().empty());
}

TEST(PostedWork, NetworkDeletedWithAFlushPending) {
  EventLoop loop;
  Engine engine(loop);
  Network& net = engine.add_network("doomed", NetworkOptions{});
  UniqueFd peer_a = plug_stream_peer(loop, net);
  UniqueFd peer_b = plug_stream_peer(loop, net);
  Trigger trigger;
  loop.add(trigger.read_end.get(), EPOLLIN, [&](std::uint32_t) {
    engine.del_network("doomed");
    loop.stop();
  });
  // A broadcast from peer a is queued to port b, which posts a flush; the
  // network goes away before the flush runs.
  std::uint8_t frame[4 + 60] = {0, 0, 0, 60};
  for (int i = 4; i < 10; ++i) frame[i] = 0xff;
  frame[10] = 0x52;
  frame[15] = 1;
  ASSERT_EQ(::write(peer_a.get(), frame, sizeof frame), static_cast<ssize_t>(sizeof frame));
  // Let a's frame arrive before the trigger, in one batch.
  trigger.fire();
  loop.run();
  EXPECT_TRUE(engine.networks().empty());
}

TEST(PostedWork, TasksOfALiveOwnerRunOthersAreSkipped) {
  EventLoop loop;
  int ran = 0;
  {
    LifeToken gone;
    loop.post(gone, [&] { ran += 100; });
  }
  LifeToken alive;
  loop.post(alive, [&] { ran += 1; });
  loop.post([&] {
    ran += 10;
    loop.stop();
  });
  loop.run();
  EXPECT_EQ(ran, 11);
}

}  // namespace
// A handler learns which turn woke it: a TCP flow that drained its socket
// earlier in the same turn skips the stale edge (nat/tcp.cpp).
TEST(EventLoopTurns, EachWaitIsANewTurnAndReportsItsEvents) {
  EventLoop loop;
  Trigger a, b;
  std::vector<std::uint64_t> seen;
  loop.add(a.read_end.get(), EPOLLIN, [&](std::uint32_t) {
    char c;
    while (::read(a.read_end.get(), &c, 1) == 1) {}
    seen.push_back(loop.turn());
  });
  loop.add(b.read_end.get(), EPOLLIN, [&](std::uint32_t) {
    char c;
    while (::read(b.read_end.get(), &c, 1) == 1) {}
    seen.push_back(loop.turn());
  });
  EXPECT_EQ(loop.run_once(0), 0);
  a.fire();
  b.fire();
  EXPECT_EQ(loop.run_once(0), 2);
  a.fire();
  EXPECT_EQ(loop.run_once(0), 1);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], seen[1]);
  EXPECT_EQ(seen[2], seen[1] + 1);
}

}  // namespace vnet
