// TcpReassembly: a guest's segments past a hole, as hostile input.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "nat/tcp_reassembly.hpp"

namespace vnet::nat {
namespace {

using wire::Bytes;
using wire::TcpSackBlock;
using Result = TcpReassembly::Result;

std::vector<std::uint8_t> stream(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 13 + 1);
  return v;
}

class ReassemblyTest : public ::testing::Test {
 protected:
  // A sender's stream starting at `base`; offsets below are into it.
  Result put(std::size_t from, std::size_t len, bool fin = false) {
    return q.insert(rcv_nxt, window, base + static_cast<std::uint32_t>(from),
                    Bytes(data).subspan(from, len), fin);
  }
  // Takes what continues the stream, as the translator does.
  std::vector<std::uint8_t> take() {
    std::vector<std::uint8_t> out;
    for (Bytes b = q.contiguous(rcv_nxt); !b.empty(); b = q.contiguous(rcv_nxt)) {
      out.insert(out.end(), b.begin(), b.end());
      rcv_nxt += static_cast<std::uint32_t>(b.size());
      q.advance(rcv_nxt);
    }
    return out;
  }
  std::vector<TcpSackBlock> blocks(std::size_t max = 4) {
    std::vector<TcpSackBlock> out(max);
    out.resize(q.sack_blocks(rcv_nxt, out));
    return out;
  }
  TcpSackBlock at(std::size_t from, std::size_t to) {
    return {base + static_cast<std::uint32_t>(from), base + static_cast<std::uint32_t>(to)};
  }
  std::vector<std::uint8_t> slice(std::size_t from, std::size_t to) {
    return {data.begin() + static_cast<std::ptrdiff_t>(from), data.begin() + static_cast<std::ptrdiff_t>(to)};
  }

  std::uint32_t base = 1000;
  std::uint32_t rcv_nxt = 1000;
  std::uint32_t window = 1 << 20;
  std::vector<std::uint8_t> data = stream(1 << 16);
  TcpReassembly::Budget budget{1 << 20};
  TcpReassembly q{budget, 256 << 10};
};

TEST_F(ReassemblyTest, NothingContinuesTheStreamUntilTheHoleIsFilled) {
  EXPECT_EQ(put(100, 50), Result::Stored);
  EXPECT_TRUE(take().empty());
  // The translator writes [0, 100) itself, then takes the rest.
  rcv_nxt += 100;
  EXPECT_EQ(take(), slice(100, 150));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(budget.used, 0u);
}

TEST_F(ReassemblyTest, OverlappingAndRepeatedSegmentsKeepEachByteOnce) {
  EXPECT_EQ(put(100, 50), Result::Stored);
  EXPECT_EQ(put(100, 50), Result::Duplicate);
  EXPECT_EQ(put(120, 10), Result::Duplicate);
  EXPECT_EQ(put(90, 80), Result::Stored);    // both ends stick out
  EXPECT_EQ(put(200, 10), Result::Stored);
  EXPECT_EQ(put(160, 60), Result::Stored);   // bridges [170, 200) and past 210
  EXPECT_EQ(q.bytes(), 130u);                // [90, 220)
  EXPECT_EQ(blocks(), (std::vector<TcpSackBlock>{at(90, 220)}));
  rcv_nxt += 90;
  EXPECT_EQ(take(), slice(90, 220));
  EXPECT_EQ(budget.used, 0u);
}

TEST_F(ReassemblyTest, OldBytesAreNotKept) {
  rcv_nxt += 100;
  EXPECT_EQ(put(0, 100), Result::Duplicate);
  EXPECT_EQ(put(50, 50), Result::Duplicate);
  EXPECT_EQ(put(50, 70), Result::Stored);    // only [100, 120) is new
  EXPECT_EQ(q.bytes(), 20u);
  EXPECT_EQ(take(), slice(100, 120));
}

TEST_F(ReassemblyTest, BytesBeyondTheWindowAreCut) {
  window = 200;
  EXPECT_EQ(put(150, 100), Result::Stored);
  EXPECT_EQ(q.bytes(), 50u);
  EXPECT_EQ(put(300, 10), Result::NoRoom);
  EXPECT_EQ(put(4000000, 10), Result::NoRoom);  // far ahead
  EXPECT_EQ(blocks(), (std::vector<TcpSackBlock>{at(150, 200)}));
}

TEST_F(ReassemblyTest, SequenceNumbersWrapAround) {
  base = rcv_nxt = 0xffffff00u;
  EXPECT_EQ(put(0x180, 0x40), Result::Stored);  // past the wrap
  EXPECT_EQ(put(0x80, 0x100), Result::Stored);  // across it
  EXPECT_EQ(blocks(), (std::vector<TcpSackBlock>{at(0x80, 0x1c0)}));
  rcv_nxt += 0x80;
  EXPECT_EQ(take(), slice(0x80, 0x1c0));
}

TEST_F(ReassemblyTest, LatestBlockFirstThenInOrder) {
  EXPECT_EQ(put(100, 10), Result::Stored);
  EXPECT_EQ(put(300, 10), Result::Stored);
  EXPECT_EQ(put(500, 10), Result::Stored);
  EXPECT_EQ(put(200, 10), Result::Stored);
  EXPECT_EQ(put(700, 10), Result::Stored);
  EXPECT_EQ(blocks(), (std::vector<TcpSackBlock>{at(700, 710), at(100, 110), at(200, 210), at(300, 310)}));
  EXPECT_EQ(blocks(2), (std::vector<TcpSackBlock>{at(700, 710), at(100, 110)}));
  EXPECT_TRUE(blocks(0).empty());
}

TEST_F(ReassemblyTest, APartlyTakenSegmentIsReportedFromRcvNxt) {
  EXPECT_EQ(put(100, 100), Result::Stored);
  EXPECT_EQ(put(300, 10), Result::Stored);
  rcv_nxt += 150;  // the host took [0, 150) with the first half of the kept segment
  EXPECT_EQ(blocks(), (std::vector<TcpSackBlock>{at(300, 310), at(150, 200)}));
  EXPECT_EQ(take(), slice(150, 200));
}

TEST_F(ReassemblyTest, PerFlowBytesAndSegmentsAreBounded) {
  TcpReassembly small{budget, 1000};
  EXPECT_EQ(small.insert(rcv_nxt, window, base + 10, Bytes(data).first(900), false), Result::Stored);
  EXPECT_EQ(small.insert(rcv_nxt, window, base + 2000, Bytes(data).first(200), false), Result::NoRoom);
  EXPECT_EQ(small.bytes(), 900u);
  // Many one-byte segments, each with a gap: at most kMaxSegments of them.
  std::size_t stored = 0;
  for (std::size_t i = 0; i < 2 * TcpReassembly::kMaxSegments; ++i) {
    if (put(1 + 2 * i, 1) == Result::Stored) ++stored;
  }
  EXPECT_EQ(stored, TcpReassembly::kMaxSegments);
  EXPECT_EQ(q.segments(), TcpReassembly::kMaxSegments);
}

TEST_F(ReassemblyTest, ARunPastOneHoleIsOneBlockWhateverItsSegments) {
  for (std::size_t i = 0; i < 4 * TcpReassembly::kMaxSegments; ++i) ASSERT_EQ(put(10 + 10 * i, 10), Result::Stored);
  EXPECT_EQ(q.segments(), 1u);
  EXPECT_EQ(put(5, 5), Result::Stored);  // joins the run from the left
  EXPECT_EQ(q.segments(), 1u);
  EXPECT_EQ(blocks(), (std::vector<TcpSackBlock>{at(5, 10 + 40 * TcpReassembly::kMaxSegments)}));
  rcv_nxt += 5;
  EXPECT_EQ(take(), slice(5, 10 + 40 * TcpReassembly::kMaxSegments));
  EXPECT_EQ(budget.used, 0u);
}

TEST_F(ReassemblyTest, TheBudgetIsSharedAndGivenBack) {
  TcpReassembly::Budget tight{4096};
  {
    TcpReassembly a{tight, 1 << 20}, b{tight, 1 << 20};
    EXPECT_EQ(a.insert(rcv_nxt, window, base + 10, Bytes(data).first(3000), false), Result::Stored);
    EXPECT_EQ(b.insert(rcv_nxt, window, base + 10, Bytes(data).first(3000), false), Result::NoRoom);
    EXPECT_EQ(b.insert(rcv_nxt, window, base + 10, Bytes(data).first(900), false), Result::Stored);
    EXPECT_EQ(tight.used, 3900u + 2 * TcpReassembly::kSegmentOverhead);
    a.clear();
    EXPECT_EQ(tight.used, 900u + TcpReassembly::kSegmentOverhead);
  }
  EXPECT_EQ(tight.used, 0u) << "destroyed queues give their bytes back";
}

TEST_F(ReassemblyTest, FinAfterTheKeptData) {
  EXPECT_EQ(put(100, 20, true), Result::Stored);
  rcv_nxt += 100;
  EXPECT_FALSE(q.fin_at(rcv_nxt));
  EXPECT_EQ(take(), slice(100, 120));
  EXPECT_TRUE(q.fin_at(rcv_nxt));
}

TEST_F(ReassemblyTest, ABareFinPastTheHole) {
  EXPECT_EQ(q.insert(rcv_nxt, window, base + 50, {}, true), Result::Stored);
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.fin_at(rcv_nxt));
  EXPECT_TRUE(q.fin_at(rcv_nxt + 50));
}

TEST_F(ReassemblyTest, AFinBeyondTheWindowIsIgnored) {
  window = 100;
  EXPECT_EQ(put(50, 100, true), Result::Stored);  // cut at 100, so the FIN is not in it
  EXPECT_FALSE(q.fin_at(rcv_nxt + 100));
  EXPECT_FALSE(q.fin_at(rcv_nxt + 150));
  EXPECT_EQ(q.insert(rcv_nxt, window, base + 500, {}, true), Result::NoRoom);
  EXPECT_FALSE(q.fin_at(rcv_nxt + 500));
}

TEST_F(ReassemblyTest, AZeroWindowKeepsNothing) {
  window = 0;
  EXPECT_EQ(put(10, 10), Result::NoRoom);
  EXPECT_TRUE(q.empty());
}

TEST_F(ReassemblyTest, AnEmptySegmentKeepsNothing) {
  EXPECT_EQ(q.insert(rcv_nxt, window, base + 10, {}, false), Result::Duplicate);
  EXPECT_EQ(q.insert(rcv_nxt, window, base - 10, {}, false), Result::Duplicate);
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace vnet::nat
