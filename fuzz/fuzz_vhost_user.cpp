// What a malicious vhost-user front end controls: its control messages, and
// the guest memory the rings live in. The bytes are read as one message
// (header and payload through every payload parser), then copied into the
// shared memory as descriptor table, available ring and buffers, and the
// rings are walked in both directions. Nothing may read outside the memory,
// loop, or return a chain that breaks the bounds it promises.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ports/virtqueue.hpp"
#include "wire/vhost_user.hpp"

namespace {

constexpr std::uint64_t kGpa = 0x100000, kUaddr = 0x7f0000000000, kSize = 16384;

struct SharedMemory {
  vnet::GuestMemory memory;
  std::uint8_t* view = nullptr;
  SharedMemory() {
    vnet::UniqueFd fd(::memfd_create("fuzz-guest", MFD_CLOEXEC));
    if (!fd || ::ftruncate(fd.get(), kSize) != 0) __builtin_trap();
    view = static_cast<std::uint8_t*>(::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0));
    std::vector<vnet::UniqueFd> fds;
    fds.push_back(std::move(fd));
    memory.map({{kGpa, kSize, kUaddr, 0}}, fds);
  }
};

void parse_message(vnet::wire::Bytes input) {
  using namespace vnet::wire;
  VhostUserError e{};
  const auto header = parse_vhost_user_header(input, &e);
  if (!header) return;
  if (header->size > kVhostUserMaxPayload) __builtin_trap();
  const Bytes payload = input.subspan(kVhostUserHeaderSize, std::min<std::size_t>(header->size, input.size() - kVhostUserHeaderSize));
  parse_u64_payload(payload, &e);
  parse_vring_state(payload, &e);
  parse_vring_addr(payload, &e);
  if (const auto regions = parse_memory_table(payload, &e)) {
    if (regions->size() > kVhostUserMaxRegions) __builtin_trap();
    for (const auto& r : *regions)
      if (r.size == 0 || r.guest_phys_addr + r.size < r.guest_phys_addr) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static SharedMemory shared;
  parse_message({data, size});

  std::memset(shared.view, 0, kSize);
  std::memcpy(shared.view, data, std::min<std::size_t>(size, kSize));
  // The ring size and the split of the memory come from the first bytes.
  const std::uint32_t num = size > 0 ? 1u << (data[0] % 9) : 1;  // 1..256
  vnet::Virtqueue ring;
  if (!ring.set_size(num)) __builtin_trap();
  ring.set_addresses({0, 0, kUaddr + 4096, kUaddr + 12288, kUaddr + 8192, 0});
  if (!ring.map(shared.memory)) __builtin_trap();
  vnet::DescriptorChain chain;
  for (std::uint32_t i = 0; i < 2 * num; ++i) {
    const auto popped = ring.pop(shared.memory, chain, (i & 1) != 0);
    if (popped != vnet::Virtqueue::Pop::Ok) break;
    if (chain.head >= num || chain.count == 0 || chain.count > vnet::DescriptorChain::kMaxSegments) __builtin_trap();
    std::uint64_t total = 0;
    for (std::size_t s = 0; s < chain.count; ++s) {
      const auto& seg = chain.segments[s];
      // Every segment lies in the mapped memory: touching it must be safe.
      if (seg.len > 0) {
        volatile std::uint8_t first = seg.data[0];
        volatile std::uint8_t last = seg.data[seg.len - 1];
        (void)first;
        (void)last;
      }
      total += seg.len;
    }
    if (total != chain.bytes) __builtin_trap();
    ring.push_used(chain.head, 0);
  }
  ring.publish();
  return 0;
}
