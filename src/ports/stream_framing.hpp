// Deframing of QEMU's stream protocol (4-byte big-endian length, then the
// frame), kept apart from the socket so it can be tested and fuzzed alone.
#pragma once

#include <cstddef>
#include <cstdint>

#include "fabric/counters.hpp"
#include "wire/bytes.hpp"

namespace vnet {

class StreamDeframer {
 public:
  // Lengths above this are not frames at all: the stream is not speaking the
  // protocol (or lost sync), and the connection must go.
  static constexpr std::size_t kMaxSkippableFrame = 1 << 20;

  explicit StreamDeframer(std::size_t max_frame) : max_frame_(max_frame) {}

  enum class Result { Ok, Fatal };

  // Consumes whole frames from data, calling on_frame(Bytes) for each valid
  // one; sets `consumed` to the bytes used (the rest is an incomplete frame
  // to present again with more data). A zero or runt length is counted and
  // skipped; an oversize one is counted and its bytes skipped, even across
  // calls. on_frame returns false to stop early (the port went away).
  template <typename OnFrame>
  Result consume(wire::Bytes data, std::size_t& consumed, PortCounters& counters, OnFrame&& on_frame);

  void reset() { skip_bytes_ = 0; }

 private:
  std::size_t max_frame_;
  std::size_t skip_bytes_ = 0;
};

template <typename OnFrame>
StreamDeframer::Result StreamDeframer::consume(wire::Bytes data, std::size_t& consumed, PortCounters& counters,
                                               OnFrame&& on_frame) {
  std::size_t at = std::min(skip_bytes_, data.size());
  skip_bytes_ -= at;
  consumed = at;
  while (data.size() - at >= 4) {
    const std::uint32_t len = wire::load_be32(data, at);
    if (len > max_frame_) {
      if (len > kMaxSkippableFrame) {
        counters.drop_malformed++;
        return Result::Fatal;
      }
      counters.drop_oversize++;
      at += 4;
      const std::size_t here = std::min<std::size_t>(len, data.size() - at);
      skip_bytes_ = len - here;
      at += here;
      consumed = at;
      continue;
    }
    if (data.size() - at - 4 < len) break;  // the rest of this frame is still on its way
    const wire::Bytes frame = data.subspan(at + 4, len);
    at += 4 + len;
    consumed = at;
    if (len == 0) {
      counters.drop_runt++;
      continue;
    }
    if (!on_frame(frame)) break;
  }
  return Result::Ok;
}

}  // namespace vnet
