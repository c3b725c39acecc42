// A bounded FIFO of frames in one preallocated ring of bytes.
//
// Used wherever a frame must wait: output to a peer that is not writable yet,
// and the delay/rate stage of link impairments. Each record is a small header
// (length, due time) followed by the frame bytes, kept contiguous so a record
// can go to writev/sendmmsg as is. When a record does not fit before the end
// of the ring, the tail is skipped and the record starts at offset 0. Memory
// is allocated once, at construction; push() never allocates and reports
// "full" instead, which callers count as an overflow drop.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "core/clock.hpp"

namespace vnet {

class FrameQueue {
 public:
  struct Record {
    std::span<const std::uint8_t> bytes;
    Nanos due;
  };

  explicit FrameQueue(std::size_t capacity_bytes);

  // Appends prefix+frame as one record (prefix may be empty, e.g. a stream
  // length header). Returns false, storing nothing, when it does not fit.
  bool push(std::span<const std::uint8_t> prefix, std::span<const std::uint8_t> frame, Nanos due = 0);
  bool push(std::span<const std::uint8_t> frame, Nanos due = 0) { return push({}, frame, due); }

  bool empty() const { return count_ == 0; }
  std::size_t frames() const { return count_; }
  std::size_t bytes_used() const { return used_; }
  std::size_t capacity() const { return capacity_; }
  std::size_t max_record() const { return capacity_ / 2; }

  // The oldest record; only valid while the queue is non-empty.
  Record front() const;
  // Iterates records from the oldest: calls f(Record) until it returns false.
  template <typename F>
  void for_each(F&& f) const {
    std::size_t at = head_;
    for (std::size_t i = 0; i < count_; ++i) {
      at = skip_wrap(at);
      Record r = record_at(at);
      if (!f(r)) return;
      at = advance(at, r.bytes.size());
    }
  }
  void pop();
  void clear();

 private:
  struct Header {
    std::uint32_t length;
    std::uint32_t pad;
    Nanos due;
  };
  static constexpr std::size_t kHeader = sizeof(Header);
  static constexpr std::uint32_t kWrapMarker = 0xffffffffu;

  static std::size_t align8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }
  std::size_t skip_wrap(std::size_t at) const;
  std::size_t advance(std::size_t at, std::size_t len) const { return (at + kHeader + align8(len)) % capacity_; }
  Record record_at(std::size_t at) const;

  std::unique_ptr<std::uint8_t[]> ring_;
  std::size_t capacity_;
  std::size_t head_ = 0;  // oldest record
  std::size_t tail_ = 0;  // where the next record goes
  std::size_t used_ = 0;  // bytes reserved, including headers and skipped tails
  std::size_t count_ = 0;
};

}  // namespace vnet
