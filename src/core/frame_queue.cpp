#include "core/frame_queue.hpp"

namespace vnet {

FrameQueue::FrameQueue(std::size_t capacity_bytes)
    : ring_(new std::uint8_t[align8(capacity_bytes)]), capacity_(align8(capacity_bytes)) {}

bool FrameQueue::push(std::span<const std::uint8_t> prefix, std::span<const std::uint8_t> frame, Nanos due) {
  const std::size_t len = prefix.size() + frame.size();
  const std::size_t need = kHeader + align8(len);
  std::size_t at = tail_;
  std::size_t skipped = 0;
  if (at + need > capacity_) {
    // The record must be contiguous: waste the tail and start again at 0.
    skipped = capacity_ - at;
    at = 0;
  }
  if (used_ + skipped + need > capacity_) return false;
  if (skipped >= kHeader) {
    Header wrap{kWrapMarker, 0, 0};
    std::memcpy(ring_.get() + tail_, &wrap, kHeader);
  }
  Header h{static_cast<std::uint32_t>(len), 0, due};
  std::memcpy(ring_.get() + at, &h, kHeader);
  if (!prefix.empty()) std::memcpy(ring_.get() + at + kHeader, prefix.data(), prefix.size());
  if (!frame.empty()) std::memcpy(ring_.get() + at + kHeader + prefix.size(), frame.data(), frame.size());
  used_ += skipped + need;
  tail_ = (at + need) % capacity_;
  ++count_;
  return true;
}

std::size_t FrameQueue::skip_wrap(std::size_t at) const {
  // A tail shorter than a header cannot hold a marker and is always skipped.
  if (capacity_ - at < kHeader) return 0;
  Header h;
  std::memcpy(&h, ring_.get() + at, kHeader);
  return h.length == kWrapMarker ? 0 : at;
}

FrameQueue::Record FrameQueue::record_at(std::size_t at) const {
  Header h;
  std::memcpy(&h, ring_.get() + at, kHeader);
  return Record{{ring_.get() + at + kHeader, h.length}, h.due};
}

FrameQueue::Record FrameQueue::front() const { return record_at(skip_wrap(head_)); }

void FrameQueue::pop() {
  if (count_ == 0) return;
  std::size_t at = skip_wrap(head_);
  std::size_t skipped = at == head_ ? 0 : capacity_ - head_;
  Record r = record_at(at);
  std::size_t need = kHeader + align8(r.bytes.size());
  used_ -= skipped + need;
  head_ = (at + need) % capacity_;
  if (--count_ == 0) clear();
}

void FrameQueue::clear() {
  head_ = tail_ = used_ = count_ = 0;
}

}  // namespace vnet
