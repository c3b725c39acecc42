#include "core/frame_queue.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <vector>

namespace vnet {
namespace {

std::vector<std::uint8_t> bytes(std::size_t n, std::uint8_t fill) { return std::vector<std::uint8_t>(n, fill); }

TEST(FrameQueue, KeepsOrderAndContent) {
  FrameQueue q(4096);
  auto a = bytes(100, 1), b = bytes(200, 2);
  ASSERT_TRUE(q.push(a, 5));
  ASSERT_TRUE(q.push(b, 7));
  EXPECT_EQ(q.frames(), 2u);
  EXPECT_EQ(q.front().bytes.size(), 100u);
  EXPECT_EQ(q.front().due, 5);
  q.pop();
  EXPECT_EQ(q.front().bytes[0], 2);
  EXPECT_EQ(q.front().due, 7);
  q.pop();
  EXPECT_TRUE(q.empty());
}

TEST(FrameQueue, PrefixIsPartOfTheRecord) {
  FrameQueue q(1024);
  std::uint8_t prefix[4] = {0, 0, 0, 3};
  auto f = bytes(3, 9);
  ASSERT_TRUE(q.push(prefix, f));
  auto r = q.front();
  ASSERT_EQ(r.bytes.size(), 7u);
  EXPECT_EQ(r.bytes[3], 3);
  EXPECT_EQ(r.bytes[6], 9);
}

TEST(FrameQueue, RefusesWhenFullWithoutCorruption) {
  FrameQueue q(1024);
  auto f = bytes(300, 4);
  int pushed = 0;
  while (q.push(f)) ++pushed;
  EXPECT_GE(pushed, 2);
  EXPECT_LE(q.bytes_used(), q.capacity());
  EXPECT_EQ(q.frames(), static_cast<std::size_t>(pushed));
  q.pop();
  EXPECT_TRUE(q.push(f)) << "space freed by pop is reusable";
}

TEST(FrameQueue, WrapsAroundUnderRandomLoad) {
  // A model FIFO and the ring must agree through many wrap-arounds.
  FrameQueue q(8192);
  std::deque<std::vector<std::uint8_t>> model;
  std::mt19937 rng(42);
  for (int i = 0; i < 20000; ++i) {
    if (rng() % 3 != 0) {
      auto f = bytes(1 + rng() % 1500, static_cast<std::uint8_t>(i));
      if (q.push(f, i)) model.push_back(f);
    } else if (!model.empty()) {
      auto r = q.front();
      ASSERT_EQ(std::vector<std::uint8_t>(r.bytes.begin(), r.bytes.end()), model.front());
      q.pop();
      model.pop_front();
    }
    ASSERT_EQ(q.frames(), model.size());
  }
}

TEST(FrameQueue, ForEachVisitsOldestFirstAndStops) {
  FrameQueue q(4096);
  for (std::uint8_t i = 0; i < 5; ++i) ASSERT_TRUE(q.push(bytes(10, i)));
  std::vector<int> seen;
  q.for_each([&](const FrameQueue::Record& r) {
    seen.push_back(r.bytes[0]);
    return seen.size() < 3;
  });
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2}));
}

}  // namespace
}  // namespace vnet
