#include "nat/tcp_reassembly.hpp"

#include <algorithm>
#include <array>

namespace vnet::nat {

namespace {

// Positions relative to rcv_nxt. Kept segments lie within a window (< 2^30)
// of it, and a partly taken one a little before it, so a signed 32-bit
// difference orders them.
std::int64_t rel(std::uint32_t seq, std::uint32_t rcv_nxt) {
  return static_cast<std::int32_t>(seq - rcv_nxt);
}

struct Gap {
  std::size_t index;  // where in segments_ it goes
  std::int64_t begin, end;
};

}  // namespace

bool TcpReassembly::fits(std::size_t len, std::size_t new_segments) const {
  return segments_.size() + new_segments <= kMaxSegments && bytes_ + len <= flow_limit_ &&
         budget_->used + len + new_segments * kSegmentOverhead <= budget_->limit;
}

TcpReassembly::Result TcpReassembly::insert(std::uint32_t rcv_nxt, std::uint32_t window, std::uint32_t seq,
                                            wire::Bytes data, bool fin) {
  advance(rcv_nxt);
  const std::int64_t limit = std::min<std::uint32_t>(window, 1u << 30);
  const std::int64_t start = rel(seq, rcv_nxt);  // where data[0] goes
  const std::int64_t begin = std::max<std::int64_t>(start, 0);
  std::int64_t end = start + static_cast<std::int64_t>(data.size());
  if (end <= 0) return Result::Duplicate;  // all before rcv_nxt
  if (begin >= limit) return Result::NoRoom;  // wholly beyond the window, a bare FIN too
  if (end > limit) {
    end = limit;
    fin = false;  // a FIN beyond the window is not accepted either
  }
  if (fin) {
    fin_seq_ = rcv_nxt + static_cast<std::uint32_t>(end);
    has_fin_ = true;
  }
  if (begin >= end) return fin ? Result::Stored : Result::Duplicate;  // no bytes in it

  // The parts of [begin, end) no kept segment covers yet.
  std::array<Gap, kMaxSegments + 1> gaps;
  std::size_t n = 0, gap_bytes = 0;
  std::int64_t cursor = begin;
  std::size_t i = 0;
  while (i < segments_.size() && rel(segments_[i].end(), rcv_nxt) <= cursor) ++i;
  for (; cursor < end && n < gaps.size(); ++i) {
    const bool more = i < segments_.size();
    const std::int64_t s = more ? rel(segments_[i].seq, rcv_nxt) : end;
    if (s > cursor) {
      const std::int64_t piece_end = std::min(s, end);
      gaps[n++] = {i, cursor, piece_end};
      gap_bytes += static_cast<std::size_t>(piece_end - cursor);
    }
    if (!more) break;
    cursor = std::max(cursor, rel(segments_[i].end(), rcv_nxt));
  }
  if (n == 0) return Result::Duplicate;
  if (!fits(gap_bytes, n)) return Result::NoRoom;

  // Backwards, so that the earlier gaps' indices stay valid.
  for (std::size_t g = n; g-- > 0;) {
    const Gap& gap = gaps[g];
    const auto* from = data.data() + (gap.begin - start);
    Segment piece{rcv_nxt + static_cast<std::uint32_t>(gap.begin),
                  std::vector<std::uint8_t>(from, from + (gap.end - gap.begin))};
    budget_->used += charge(piece);
    bytes_ += piece.data.size();
    segments_.insert(segments_.begin() + static_cast<std::ptrdiff_t>(gap.index), std::move(piece));
  }
  latest_ = rcv_nxt + static_cast<std::uint32_t>(gaps[0].begin);
  join_adjacent(gaps[0].index, gaps[n - 1].index + n);
  return Result::Stored;
}

// A run of segments that arrived in order past one hole is kept as one
// block: the segment cap then bounds holes, not segments.
void TcpReassembly::join_adjacent(std::size_t first, std::size_t last) {
  first = first > 0 ? first - 1 : 0;
  last = std::min(last, segments_.size() - 1);
  for (std::size_t i = last; i > first; --i) {
    Segment& left = segments_[i - 1];
    Segment& right = segments_[i];
    if (left.end() != right.seq) continue;
    budget_->used -= charge(left) + charge(right);
    left.data.insert(left.data.end(), right.data.begin(), right.data.end());
    budget_->used += charge(left);
    segments_.erase(segments_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

wire::Bytes TcpReassembly::contiguous(std::uint32_t rcv_nxt) const {
  if (segments_.empty()) return {};
  const Segment& first = segments_.front();
  const std::int64_t start = rel(first.seq, rcv_nxt);
  if (start > 0) return {};  // the hole is still open
  const auto skip = static_cast<std::size_t>(-start);
  if (skip >= first.data.size()) return {};
  return wire::Bytes(first.data).subspan(skip);
}

void TcpReassembly::advance(std::uint32_t rcv_nxt) {
  std::size_t taken = 0;
  while (taken < segments_.size() && rel(segments_[taken].end(), rcv_nxt) <= 0) ++taken;
  for (std::size_t i = 0; i < taken; ++i) {
    budget_->used -= charge(segments_[i]);
    bytes_ -= segments_[i].data.size();
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(taken));
  if (has_fin_ && rel(fin_seq_, rcv_nxt) < 0) has_fin_ = false;
  if (segments_.empty()) segments_.shrink_to_fit();  // a flow that recovered holds nothing
}

std::size_t TcpReassembly::sack_blocks(std::uint32_t rcv_nxt, std::span<wire::TcpSackBlock> out) const {
  if (out.empty()) return 0;
  // Adjacent segments make one block; the part before rcv_nxt is not reported.
  std::array<wire::TcpSackBlock, kMaxSegments> blocks;
  std::size_t n = 0, latest = kMaxSegments;
  for (const Segment& s : segments_) {
    if (rel(s.end(), rcv_nxt) <= 0) continue;
    const std::uint32_t left = rel(s.seq, rcv_nxt) < 0 ? rcv_nxt : s.seq;
    if (n > 0 && blocks[n - 1].right == left) {
      blocks[n - 1].right = s.end();
    } else {
      blocks[n++] = {left, s.end()};
    }
    if (rel(latest_, s.seq) >= 0 && rel(latest_, s.end()) < 0) latest = n - 1;
  }
  std::size_t written = 0;
  if (latest < n) out[written++] = blocks[latest];
  for (std::size_t b = 0; b < n && written < out.size(); ++b) {
    if (b != latest) out[written++] = blocks[b];
  }
  return written;
}

void TcpReassembly::clear() {
  for (const Segment& s : segments_) budget_->used -= charge(s);
  segments_.clear();
  segments_.shrink_to_fit();
  bytes_ = 0;
  has_fin_ = false;
}

}  // namespace vnet::nat
