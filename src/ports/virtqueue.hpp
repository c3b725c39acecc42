// Split virtqueues (virtio 1.x, section 2.7) in memory a vhost-user front
// end shares with vnet: the descriptor table, the available ring the guest
// fills and the used ring vnet returns buffers on.
//
// Everything in that memory is written by the guest and its VMM, at any
// time: every address is translated through the front end's memory table
// with its length checked, every index bounded by the ring size, a chain
// longer than the ring (a loop) or than kMaxSegments is reported broken,
// and the ring indices are read once per use (the guest may change them
// under us; a value read twice could differ).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/fd.hpp"
#include "wire/vhost_user.hpp"

namespace vnet {

// The front end's memory regions, mapped from the fds it passed.
class GuestMemory {
 public:
  GuestMemory() = default;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;
  ~GuestMemory() { clear(); }

  // Maps one region per fd; throws UserError (mapping nothing) on failure.
  void map(const std::vector<wire::MemoryRegion>& regions, std::vector<UniqueFd>& fds);
  void clear();
  bool empty() const { return regions_.empty(); }

  // A host pointer to [addr, addr + len) when it lies inside one region,
  // else nullptr; by guest-physical address (descriptors) or by the front
  // end's own virtual address (ring addresses).
  std::uint8_t* guest(std::uint64_t gpa, std::uint64_t len) const;
  std::uint8_t* front_end(std::uint64_t uaddr, std::uint64_t len) const;

 private:
  struct Region {
    wire::MemoryRegion wire;
    std::uint8_t* host;  // the region's first byte
    void* mapping;
    std::size_t mapping_len;
  };
  std::vector<Region> regions_;
};

struct Segment {
  std::uint8_t* data;
  std::uint32_t len;
};

struct DescriptorChain {
  static constexpr std::size_t kMaxSegments = 64;
  std::uint16_t head = 0;
  std::size_t count = 0;
  std::uint64_t bytes = 0;
  std::array<Segment, kMaxSegments> segments;
};

class Virtqueue {
 public:
  static constexpr std::uint32_t kMaxSize = 32768;
  enum class Pop { Empty, Ok, Broken };

  // false: not a power of two from 1 to kMaxSize.
  bool set_size(std::uint32_t num);
  std::uint32_t size() const { return num_; }
  void set_addresses(const wire::VringAddr& addr) { addr_ = addr; }
  // Translates the ring addresses through `memory`; false if they do not
  // lie inside it (the queue stays unusable).
  bool map(const GuestMemory& memory);
  void unmap() { desc_ = nullptr; avail_ = used_ = nullptr; }
  bool mapped() const { return desc_ != nullptr; }

  void set_next_avail(std::uint16_t index) {
    next_avail_ = index;
    used_idx_loaded_ = false;  // the used ring in memory is authoritative again
  }
  std::uint16_t next_avail() const { return next_avail_; }

  // The next chain the guest made available, its segments those the
  // device may write (writable=true, RX) or read (TX); a segment of the
  // wrong direction makes the chain broken.
  Pop pop(const GuestMemory& memory, DescriptorChain& chain, bool writable);
  // Gives back the chains popped since the last used-ring update (an RX
  // frame that found too little room): the guest sees nothing.
  void unpop(std::uint16_t count) { next_avail_ = static_cast<std::uint16_t>(next_avail_ - count); }
  // Returns a chain to the guest; publish() makes the returned ones visible.
  void push_used(std::uint16_t head, std::uint32_t len);
  void publish();
  // Whether the guest wants an interrupt for what was just published.
  bool wants_interrupt() const;

 private:
  std::uint32_t num_ = 0;
  wire::VringAddr addr_{};
  std::uint8_t* desc_ = nullptr;
  std::uint8_t* avail_ = nullptr;
  std::uint8_t* used_ = nullptr;
  std::uint16_t next_avail_ = 0;
  std::uint16_t used_idx_ = 0;  // our copy, published to used->idx
  bool used_idx_loaded_ = false;
};

}  // namespace vnet
