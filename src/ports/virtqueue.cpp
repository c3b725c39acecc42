#include "ports/virtqueue.hpp"

#include <sys/mman.h>

#include <atomic>
#include <cstring>

#include "core/error.hpp"

namespace vnet {
namespace {

constexpr std::uint16_t kDescNext = 1, kDescWrite = 2, kDescIndirect = 4;
constexpr std::uint16_t kAvailNoInterrupt = 1;
constexpr std::size_t kDescSize = 16;

std::uint16_t load16(const std::uint8_t* p) {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Ring indices the guest moves concurrently: read with acquire semantics so
// the ring entries they cover are read after them.
std::uint16_t load_index(std::uint8_t* p) {
  return std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(p)).load(std::memory_order_acquire);
}

}  // namespace

void GuestMemory::map(const std::vector<wire::MemoryRegion>& regions, std::vector<UniqueFd>& fds) {
  if (fds.size() != regions.size())
    throw UserError("memory table names " + std::to_string(regions.size()) + " regions but came with " +
                    std::to_string(fds.size()) + " fds");
  std::vector<Region> mapped;
  auto unmap_all = [&] {
    for (auto& r : mapped) ::munmap(r.mapping, r.mapping_len);
  };
  for (std::size_t i = 0; i < regions.size(); ++i) {
    const auto& r = regions[i];
    const std::size_t len = r.mmap_offset + r.size;
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i].get(), 0);
    if (p == MAP_FAILED) {
      unmap_all();
      throw UserError(errno_text("cannot map guest memory region " + std::to_string(i)));
    }
    mapped.push_back({r, static_cast<std::uint8_t*>(p) + r.mmap_offset, p, len});
  }
  clear();
  regions_ = std::move(mapped);
}

void GuestMemory::clear() {
  for (auto& r : regions_) ::munmap(r.mapping, r.mapping_len);
  regions_.clear();
}

std::uint8_t* GuestMemory::guest(std::uint64_t gpa, std::uint64_t len) const {
  for (const auto& r : regions_) {
    const std::uint64_t start = r.wire.guest_phys_addr;
    if (gpa >= start && gpa - start <= r.wire.size && len <= r.wire.size - (gpa - start)) return r.host + (gpa - start);
  }
  return nullptr;
}

std::uint8_t* GuestMemory::front_end(std::uint64_t uaddr, std::uint64_t len) const {
  for (const auto& r : regions_) {
    const std::uint64_t start = r.wire.user_addr;
    if (uaddr >= start && uaddr - start <= r.wire.size && len <= r.wire.size - (uaddr - start))
      return r.host + (uaddr - start);
  }
  return nullptr;
}

bool Virtqueue::set_size(std::uint32_t num) {
  if (num == 0 || num > kMaxSize || (num & (num - 1)) != 0) return false;
  num_ = num;
  return true;
}

bool Virtqueue::map(const GuestMemory& memory) {
  unmap();
  if (num_ == 0) return false;
  auto* desc = memory.front_end(addr_.desc, std::uint64_t{num_} * kDescSize);
  auto* avail = memory.front_end(addr_.avail, 6 + 2 * std::uint64_t{num_});
  auto* used = memory.front_end(addr_.used, 6 + 8 * std::uint64_t{num_});
  // The rings' alignment (virtio 1.x 2.7): what atomic index access needs.
  if (!desc || !avail || !used || reinterpret_cast<std::uintptr_t>(avail) % 2 ||
      reinterpret_cast<std::uintptr_t>(used) % 4)
    return false;
  desc_ = desc;
  avail_ = avail;
  used_ = used;
  used_idx_loaded_ = false;
  return true;
}

Virtqueue::Pop Virtqueue::pop(const GuestMemory& memory, DescriptorChain& chain, bool writable) {
  if (!mapped()) return Pop::Empty;
  const std::uint16_t avail_idx = load_index(avail_ + 2);
  const auto pending = static_cast<std::uint16_t>(avail_idx - next_avail_);
  if (pending == 0) return Pop::Empty;
  if (pending > num_) return Pop::Broken;  // the guest claims more than the ring holds
  const std::uint16_t head = load16(avail_ + 4 + 2 * (next_avail_ % num_));
  ++next_avail_;
  if (head >= num_) return Pop::Broken;
  chain.head = head;
  chain.count = 0;
  chain.bytes = 0;
  std::uint16_t index = head;
  for (std::uint32_t steps = 0;; ++steps) {
    if (steps >= num_ || chain.count == DescriptorChain::kMaxSegments) return Pop::Broken;
    const std::uint8_t* d = desc_ + std::size_t{index} * kDescSize;
    std::uint64_t addr;
    std::uint32_t len;
    std::memcpy(&addr, d, 8);
    std::memcpy(&len, d + 8, 4);
    const std::uint16_t flags = load16(d + 12);
    const std::uint16_t next = load16(d + 14);
    if (flags & kDescIndirect) return Pop::Broken;  // not offered
    if (((flags & kDescWrite) != 0) != writable) return Pop::Broken;
    std::uint8_t* data = memory.guest(addr, len);
    if (!data) return Pop::Broken;
    chain.segments[chain.count++] = {data, len};
    chain.bytes += len;
    if (!(flags & kDescNext)) break;
    if (next >= num_) return Pop::Broken;
    index = next;
  }
  return Pop::Ok;
}

void Virtqueue::push_used(std::uint16_t head, std::uint32_t len) {
  if (!used_idx_loaded_) {
    used_idx_ = load_index(used_ + 2);
    used_idx_loaded_ = true;
  }
  std::uint8_t* elem = used_ + 4 + 8 * std::size_t{static_cast<std::uint16_t>(used_idx_ % num_)};
  const std::uint32_t id = head;
  std::memcpy(elem, &id, 4);
  std::memcpy(elem + 4, &len, 4);
  ++used_idx_;
}

void Virtqueue::publish() {
  if (!used_idx_loaded_) return;
  std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(used_ + 2))
      .store(used_idx_, std::memory_order_release);
}

bool Virtqueue::wants_interrupt() const {
  if (!mapped()) return false;
  // The guest reads used->idx, then sets or clears the flag: order our
  // store of the index before this load.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return (load_index(avail_) & kAvailNoInterrupt) == 0;
}

}  // namespace vnet
