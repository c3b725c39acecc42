#include "fabric/impairment.hpp"

#include <gtest/gtest.h>

namespace vnet {
namespace {

TEST(ImpairmentParse, Rates) {
  EXPECT_EQ(parse_rate("10mbit"), 10'000'000u);
  EXPECT_EQ(parse_rate("1.5gbit"), 1'500'000'000u);
  EXPECT_EQ(parse_rate("512kbit"), 512'000u);
  EXPECT_EQ(parse_rate("1mbps"), 8'000'000u);
  EXPECT_EQ(parse_rate("1000"), 1000u);
  EXPECT_FALSE(parse_rate(""));
  EXPECT_FALSE(parse_rate("fast"));
  EXPECT_FALSE(parse_rate("10 mbit"));
  EXPECT_FALSE(parse_rate("-1mbit"));
  EXPECT_FALSE(parse_rate("10furlongs"));
  EXPECT_FALSE(parse_rate("99999999gbit"));
}

TEST(ImpairmentParse, Durations) {
  EXPECT_EQ(parse_duration("25ms"), 25 * kMillis);
  EXPECT_EQ(parse_duration("1.5s"), 1500 * kMillis);
  EXPECT_EQ(parse_duration("500us"), 500 * kMicros);
  EXPECT_EQ(parse_duration("0"), 0);
  EXPECT_FALSE(parse_duration("25"));  // a unit is required for non-zero values
  EXPECT_FALSE(parse_duration("ms"));
  EXPECT_FALSE(parse_duration("2h"));
}

TEST(ImpairmentParse, ProbabilitiesAndSizes) {
  EXPECT_DOUBLE_EQ(*parse_probability("1%"), 0.01);
  EXPECT_DOUBLE_EQ(*parse_probability("0.5"), 0.5);
  EXPECT_FALSE(parse_probability("101%"));
  EXPECT_FALSE(parse_probability("2"));
  EXPECT_FALSE(parse_probability("%"));
  EXPECT_EQ(parse_size("64k"), 65536u);
  EXPECT_EQ(parse_size("1m"), 1048576u);
  EXPECT_EQ(parse_size("1500"), 1500u);
  EXPECT_FALSE(parse_size("1t"));
}

class ImpairmentStage : public ::testing::Test {
 protected:
  EventLoop loop;
  PortCounters counters;
  std::vector<std::size_t> out;
  std::vector<std::uint8_t> frame = std::vector<std::uint8_t>(100, 0xab);

  std::unique_ptr<Impairment> make(ImpairmentParams p) {
    return std::make_unique<Impairment>(loop, p, counters, [this](wire::Bytes f) { out.push_back(f.size()); }, 7);
  }
};

TEST_F(ImpairmentStage, LossDropsAboutTheAskedShare) {
  ImpairmentParams p;
  p.loss = 0.25;
  auto stage = make(p);
  for (int i = 0; i < 10000; ++i) stage->process(frame);
  EXPECT_NEAR(static_cast<double>(counters.imp_lost) / 10000, 0.25, 0.03);
  EXPECT_EQ(out.size() + counters.imp_lost, 10000u);
}

TEST_F(ImpairmentStage, DuplicationAddsFrames) {
  ImpairmentParams p;
  p.duplicate = 0.1;
  auto stage = make(p);
  for (int i = 0; i < 10000; ++i) stage->process(frame);
  EXPECT_EQ(out.size(), 10000u + counters.imp_duplicated);
  EXPECT_NEAR(static_cast<double>(counters.imp_duplicated) / 10000, 0.1, 0.02);
}

TEST_F(ImpairmentStage, DelayHoldsFramesUntilDue) {
  ImpairmentParams p;
  p.delay = 20 * kMillis;
  auto stage = make(p);
  stage->process(frame);
  EXPECT_TRUE(out.empty()) << "a delayed frame must not leave at once";
  EXPECT_EQ(stage->queued_frames(), 1u);
  Timer stop(loop, [this] { loop.stop(); });
  stop.arm_in(60 * kMillis);
  const Nanos start = monotonic_now();
  loop.run();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_GE(monotonic_now() - start, 20 * kMillis);
  EXPECT_EQ(counters.imp_delayed, 1u);
}

TEST_F(ImpairmentStage, QueueOverflowIsCounted) {
  ImpairmentParams p;
  p.rate_bps = 1000;  // far slower than the frames arrive
  p.queue_bytes = 128 * 1024;
  auto stage = make(p);
  for (int i = 0; i < 5000; ++i) stage->process(frame);
  EXPECT_GT(counters.imp_queue_drop, 0u);
  EXPECT_GT(counters.imp_shaped, 0u);
}

}  // namespace
}  // namespace vnet

namespace vnet {
namespace {

// Two ports' stages in one bandwidth group: together they get the group's
// rate, whichever of them sends; a stage outside the group is not held.
TEST(BandwidthGroupStage, MembersShareOneRate) {
  EventLoop loop;
  PortCounters counters;
  auto group = std::make_shared<BandwidthGroup>(loop, "g");
  group->rate_bps = 8'000'000;  // 1 MB/s: a 1000-byte frame takes 1 ms
  group->burst_bytes = 1000;
  std::size_t a_out = 0, b_out = 0, free_out = 0;
  Impairment a(loop, {}, counters, [&](wire::Bytes) { a_out++; }, 1, group, 1);
  Impairment b(loop, {}, counters, [&](wire::Bytes) { b_out++; }, 2, group, 1);
  Impairment in_dir(loop, {}, counters, [&](wire::Bytes) { free_out++; }, 3, group, 0);
  const std::vector<std::uint8_t> frame(1000, 0);
  for (int i = 0; i < 20; ++i) {
    a.process(frame);
    b.process(frame);
  }
  in_dir.process(frame);  // the other direction has its own bucket
  EXPECT_EQ(free_out, 1u);
  EXPECT_LE(a_out + b_out, 2u) << "only the burst leaves at once";
  Timer stop(loop, [&] { loop.stop(); });
  stop.arm_in(20 * kMillis);
  loop.run();
  // 40 frames at 1 ms each need 40 ms together: about half have left after
  // 20 ms (wide bounds: a loaded machine wakes the loop late).
  EXPECT_GE(a_out + b_out, 8u);
  EXPECT_LE(a_out + b_out, 32u);
  EXPECT_NEAR(static_cast<double>(a_out), static_cast<double>(b_out), 2.0) << "arrival order shares it evenly";
  stop.arm_in(40 * kMillis);
  loop.run();
  EXPECT_EQ(a_out + b_out, 40u);
  EXPECT_GT(counters.imp_shaped, 30u);
}

// A member with a deep queue does not hold the group's rate against one that
// starts sending later: from then on they take turns (fair queueing by
// bytes), and a member back from idle gets no credit for the idle time.
TEST(BandwidthGroupStage, ADeepQueueDoesNotStarveALaterMember) {
  EventLoop loop;
  PortCounters counters;
  auto group = std::make_shared<BandwidthGroup>(loop, "g");
  group->rate_bps = 8'000'000;  // a 1000-byte frame takes 1 ms
  group->burst_bytes = 1000;
  std::size_t a_out = 0, b_out = 0;
  Impairment a(loop, {}, counters, [&](wire::Bytes) { a_out++; }, 1, group, 1);
  Impairment b(loop, {}, counters, [&](wire::Bytes) { b_out++; }, 2, group, 1);
  const std::vector<std::uint8_t> frame(1000, 0);
  for (int i = 0; i < 60; ++i) a.process(frame);
  for (int i = 0; i < 10; ++i) b.process(frame);
  Timer stop(loop, [&] { loop.stop(); });
  stop.arm_in(24 * kMillis);
  loop.run();
  // First come, first served, b would wait for all 60 of a's frames.
  EXPECT_GE(b_out, 8u) << "a: " << a_out;
  EXPECT_GE(a_out, 8u) << "b: " << b_out;
  stop.arm_in(60 * kMillis);
  loop.run();
  EXPECT_EQ(a_out + b_out, 70u);
}

// A member that leaves (its port goes or changes) while waiting for a turn
// takes its frames with it; the others keep going.
TEST(BandwidthGroupStage, AMemberLeavingWhileWaitingIsForgotten) {
  EventLoop loop;
  PortCounters counters;
  auto group = std::make_shared<BandwidthGroup>(loop, "g");
  group->rate_bps = 8'000'000;
  group->burst_bytes = 1000;
  std::size_t a_out = 0, b_out = 0;
  Impairment a(loop, {}, counters, [&](wire::Bytes) { a_out++; }, 1, group, 0);
  auto b = std::make_unique<Impairment>(loop, ImpairmentParams{}, counters, [&](wire::Bytes) { b_out++; }, 2, group, 0);
  const std::vector<std::uint8_t> frame(1000, 0);
  for (int i = 0; i < 10; ++i) {
    b->process(frame);
    a.process(frame);
  }
  EXPECT_EQ(group->lane(0).waiting(), 2u);
  b.reset();
  EXPECT_EQ(group->lane(0).waiting(), 1u);
  Timer stop(loop, [&] { loop.stop(); });
  stop.arm_in(40 * kMillis);
  loop.run();
  EXPECT_EQ(a_out, 10u);
  EXPECT_LE(b_out, 2u);  // the burst
  EXPECT_EQ(group->lane(0).waiting(), 0u);
}

}  // namespace
}  // namespace vnet
