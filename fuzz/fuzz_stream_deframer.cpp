// The byte stream a QEMU (or anything else) sends on a stream socket, fed in
// chunks of varying size the way reads deliver it.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ports/stream_framing.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t chunk = 1 + data[0] % 64;
  vnet::StreamDeframer deframer(1518);
  vnet::PortCounters counters;
  std::vector<std::uint8_t> buffer;
  std::size_t frames = 0;
  for (std::size_t at = 1; at < size; at += chunk) {
    const std::size_t n = std::min(chunk, size - at);
    buffer.insert(buffer.end(), data + at, data + at + n);
    std::size_t consumed = 0;
    auto result = deframer.consume(buffer, consumed, counters, [&](vnet::wire::Bytes frame) {
      if (frame.empty() || frame.size() > 1518) __builtin_trap();
      ++frames;
      return true;
    });
    if (consumed > buffer.size()) __builtin_trap();
    if (result == vnet::StreamDeframer::Result::Fatal) return 0;
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(consumed));
    // An incomplete frame is never longer than prefix + largest frame.
    if (buffer.size() > 4 + 1518 + chunk) __builtin_trap();
  }
  return 0;
}
