// Segments a guest sent beyond a hole, kept until the hole is filled.
//
// The translator writes a guest's in-order data straight into the host
// socket and keeps nothing; a segment that arrives after a lost one used to
// be dropped too, so one lost frame cost the guest its whole window (it had
// to resend everything after the hole, one round trip per segment without
// SACK). Now such segments wait here, are reported to the guest in SACK
// blocks, and go into the socket as soon as the hole is filled.
//
// Everything here is guest input: segments may overlap, repeat, reach
// beyond the window or wrap the sequence space. Memory is bounded per flow
// (bytes and distinct blocks) and per translator (a Budget shared by all its
// flows, charged with what the blocks allocate); a segment that does not fit
// is refused and the guest resends it.
// Only the loss path allocates: nothing is kept while data arrives in order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "wire/bytes.hpp"
#include "wire/tcp.hpp"

namespace vnet::nat {

class TcpReassembly {
 public:
  // Bytes all flows of one translator may hold (allocations plus a
  // per-block overhead, so that many tiny blocks cost what they really cost).
  struct Budget {
    std::size_t limit = 0;
    std::size_t used = 0;
  };
  static constexpr std::size_t kSegmentOverhead = 64;
  static constexpr std::size_t kMaxSegments = 256;  // distinct blocks (adjacent ones are joined)

  enum class Result {
    Stored,     // some new bytes were kept
    Duplicate,  // everything in it was already here
    NoRoom,     // over the flow's or the budget's limit: nothing kept
  };

  TcpReassembly(Budget& budget, std::size_t flow_limit) : budget_(&budget), flow_limit_(flow_limit) {}
  TcpReassembly(const TcpReassembly&) = delete;
  TcpReassembly& operator=(const TcpReassembly&) = delete;
  ~TcpReassembly() { clear(); }

  // Keeps the part of [seq, seq + data.size()) that lies after rcv_nxt and
  // before rcv_nxt + window; `fin` marks a FIN right after the data.
  Result insert(std::uint32_t rcv_nxt, std::uint32_t window, std::uint32_t seq, wire::Bytes data, bool fin);
  // The kept bytes that continue the stream at rcv_nxt (empty if the hole
  // is still open). Valid until the next insert or advance.
  wire::Bytes contiguous(std::uint32_t rcv_nxt) const;
  // Forgets what lies before rcv_nxt (the caller wrote it to the socket).
  void advance(std::uint32_t rcv_nxt);
  // The guest's FIN, once everything before it was taken.
  bool fin_at(std::uint32_t rcv_nxt) const { return has_fin_ && fin_seq_ == rcv_nxt; }
  // SACK blocks (RFC 2018) above rcv_nxt: the block holding the latest
  // segment first, then the others in sequence order; returns how many.
  std::size_t sack_blocks(std::uint32_t rcv_nxt, std::span<wire::TcpSackBlock> out) const;

  bool empty() const { return segments_.empty(); }
  std::size_t bytes() const { return bytes_; }
  std::size_t segments() const { return segments_.size(); }
  void clear();

 private:
  struct Segment {
    std::uint32_t seq;
    std::vector<std::uint8_t> data;
    std::uint32_t end() const { return seq + static_cast<std::uint32_t>(data.size()); }
  };
  // What a segment holds of the budget: its allocation, not only its bytes.
  static std::size_t charge(const Segment& s) { return s.data.capacity() + kSegmentOverhead; }
  bool fits(std::size_t len, std::size_t new_segments) const;
  void join_adjacent(std::size_t first, std::size_t last);

  Budget* budget_;
  std::size_t flow_limit_;
  std::vector<Segment> segments_;  // by sequence, not overlapping, all after rcv_nxt
  std::size_t bytes_ = 0;          // payload kept
  std::uint32_t latest_ = 0;       // a sequence number inside the latest stored segment
  std::uint32_t fin_seq_ = 0;
  bool has_fin_ = false;
};

}  // namespace vnet::nat
