// Work deferred with EventLoop::post must not outlive what it points at:
// `vnet net del` in the same event batch as a peer's disconnect used to run
// the port's "remove me later" task on the freed network (found by ASan).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
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

// 10,000 flows each hold an fd and a timer; once they have closed, the
// loop's tables must not keep their size (the idle-flows benchmark found
// 1.2 MB left over baseline).
TEST(EventLoopMemory, TablesShrinkAfterABurstOfFdsAndTimersCloses) {
  // As many fds as the limit allows (the engine raises it; a test runner's
  // soft limit may be 1024), a timer per flow in any case.
  rlimit files{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &files), 0);
  files.rlim_cur = std::min<rlim_t>(files.rlim_max, 8192);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &files), 0);
  const std::size_t fd_count = std::min<std::size_t>(4000, files.rlim_cur - 200);
  EventLoop loop;
  const std::size_t baseline = loop.table_bytes();
  std::vector<UniqueFd> fds;
  std::vector<std::unique_ptr<Timer>> timers;
  for (std::size_t i = 0; i < 10000; ++i) {
    if (i < fd_count) {
      fds.emplace_back(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      ASSERT_TRUE(fds.back());
      loop.add(fds.back().get(), EPOLLIN, [](std::uint32_t) {});
    }
    timers.push_back(std::make_unique<Timer>(loop, [] {}));
    timers.back()->arm_in(kSeconds * static_cast<Nanos>(10 + i % 7));
  }
  EXPECT_GT(loop.table_bytes(), baseline + 500 * 1024);
  // Closed in no particular order, as flows end.
  for (std::size_t i = 0; i < timers.size(); i += 2) {
    if (i < fds.size()) loop.remove(fds[i].get());
    timers[i].reset();
  }
  for (std::size_t i = timers.size(); i-- > 0;) {
    if (timers[i] && i < fds.size()) loop.remove(fds[i].get());
    timers[i].reset();
  }
  fds.clear();
  // The cancelled deadlines leave the heap as the timerfd is re-armed.
  Timer probe(loop, [] {});
  probe.arm_in(kMillis);
  while (probe.armed()) loop.run_once(10);
  EXPECT_LT(loop.table_bytes(), baseline + 64 * 1024) << "baseline " << baseline;
}

// Timers moved down by the table's compaction keep their deadlines, and a
// slot given back and made again is not fired by the deadline its previous
// owner had queued.
TEST(EventLoopMemory, CompactedTimersKeepTheirDeadlinesAndStaleOnesNeverFire) {
  EventLoop loop;
  const Nanos start = monotonic_now();
  std::vector<std::unique_ptr<Timer>> old;
  std::vector<Nanos> kept_fired_at(3, 0);
  for (int i = 0; i < 200; ++i) old.push_back(std::make_unique<Timer>(loop, [] {}));
  // Three survivors at the top of the table, where compaction must move them.
  std::vector<std::unique_ptr<Timer>> kept;
  for (int k = 0; k < 3; ++k) {
    kept.push_back(std::make_unique<Timer>(loop, [&, k] { kept_fired_at[k] = monotonic_now(); }));
    kept.back()->arm_in(60 * kMillis);
  }
  for (auto& t : old) t->arm_in(2 * kMillis);
  const std::size_t peak = loop.table_bytes();
  old.clear();  // their slots freed and compacted away, their deadlines still queued
  EXPECT_LT(loop.table_bytes(), peak / 2);
  int fresh_fired = 0;
  Timer fresh(loop, [&] { ++fresh_fired; });
  fresh.arm_in(200 * kMillis);
  while (monotonic_now() < start + 100 * kMillis) loop.run_once(5);
  for (Nanos at : kept_fired_at) {
    EXPECT_GE(at, start + 60 * kMillis);
    EXPECT_LT(at, start + 100 * kMillis);
  }
  EXPECT_EQ(fresh_fired, 0);
  EXPECT_TRUE(fresh.armed());
}

// The busy-poll window: full at first, halved while events come only after
// long sleeps, down to none; doubled back while they come soon; kept while
// they come in between.
TEST(AdaptivePoll, ShrinksWhileEventsComeLateAndGrowsWhileTheyComeSoon) {
  AdaptivePoll poll(50 * kMicros);
  EXPECT_EQ(poll.window(), 50 * kMicros);
  poll.woke_after(10 * kMicros);
  EXPECT_EQ(poll.window(), 50 * kMicros) << "never past the most";
  poll.woke_after(120 * kMicros);
  EXPECT_EQ(poll.window(), 50 * kMicros) << "a request/response's longer wait keeps the window";
  poll.woke_after(200 * kMicros);
  EXPECT_EQ(poll.window(), 25 * kMicros);
  for (int i = 0; i < 3; ++i) poll.woke_after(kMillis);
  EXPECT_EQ(poll.window(), 0) << "below the smallest window polling stops";
  poll.woke_after(kMillis);
  EXPECT_EQ(poll.window(), 0);
  poll.woke_after(20 * kMicros);
  EXPECT_EQ(poll.window(), AdaptivePoll::kMinWindow);
  for (int i = 0; i < 4; ++i) poll.woke_after(20 * kMicros);
  EXPECT_EQ(poll.window(), 50 * kMicros);
}

TEST(AdaptivePoll, OffStaysOff) {
  AdaptivePoll poll(0);
  poll.woke_after(0);
  poll.woke_after(kMicros);
  EXPECT_EQ(poll.window(), 0);
}

}  // namespace vnet
