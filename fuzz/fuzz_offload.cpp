// A TAP's virtio-net header and frame, both from a guest kernel we do not
// trust: resolving them must never read or write out of bounds.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fabric/offload.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < vnet::Offload::kHeaderLen) return 0;
  const vnet::Offload offload = vnet::Offload::parse({data, vnet::Offload::kHeaderLen});
  static std::vector<std::uint8_t> scratch(65536 + 64);
  vnet::resolve_offload({data + vnet::Offload::kHeaderLen, size - vnet::Offload::kHeaderLen}, offload, scratch,
                        [](vnet::wire::Bytes frame) {
                          if (frame.size() > 65536 + 64) __builtin_trap();
                        });
  return 0;
}
