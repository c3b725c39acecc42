#include "wire/vhost_user.hpp"

#include <cstring>

namespace vnet::wire {
namespace {

template <typename T>
T load(Bytes b, std::size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof v);
  return v;
}

template <typename T>
void append(std::vector<std::uint8_t>& out, T v) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof v);
}

template <typename T>
std::optional<T> fail(VhostUserError* error, VhostUserError e) {
  if (error) *error = e;
  return std::nullopt;
}

constexpr std::size_t kRegionSize = 32;
constexpr std::size_t kMemoryTableHead = 8;  // nregions, padding

}  // namespace

const char* to_string(VhostUserError e) {
  switch (e) {
    case VhostUserError::None: return "ok";
    case VhostUserError::Truncated: return "message truncated";
    case VhostUserError::BadVersion: return "not vhost-user version 1";
    case VhostUserError::TooLong: return "payload larger than 4096 bytes";
    case VhostUserError::BadPayload: return "payload size does not match the request";
    case VhostUserError::BadRegion: return "memory region empty or beyond 64 bits";
    case VhostUserError::TooManyRegions: return "more than 8 memory regions";
  }
  return "?";
}

std::optional<VhostUserHeader> parse_vhost_user_header(Bytes bytes, VhostUserError* error) {
  if (bytes.size() < kVhostUserHeaderSize) return fail<VhostUserHeader>(error, VhostUserError::Truncated);
  VhostUserHeader h{load<std::uint32_t>(bytes, 0), load<std::uint32_t>(bytes, 4), load<std::uint32_t>(bytes, 8)};
  if ((h.flags & 0x3) != kVhostUserVersion) return fail<VhostUserHeader>(error, VhostUserError::BadVersion);
  if (h.size > kVhostUserMaxPayload) return fail<VhostUserHeader>(error, VhostUserError::TooLong);
  return h;
}

std::optional<std::uint64_t> parse_u64_payload(Bytes payload, VhostUserError* error) {
  if (payload.size() != 8) return fail<std::uint64_t>(error, VhostUserError::BadPayload);
  return load<std::uint64_t>(payload, 0);
}

std::optional<VringState> parse_vring_state(Bytes payload, VhostUserError* error) {
  if (payload.size() != 8) return fail<VringState>(error, VhostUserError::BadPayload);
  return VringState{load<std::uint32_t>(payload, 0), load<std::uint32_t>(payload, 4)};
}

std::optional<VringAddr> parse_vring_addr(Bytes payload, VhostUserError* error) {
  if (payload.size() != 40) return fail<VringAddr>(error, VhostUserError::BadPayload);
  return VringAddr{load<std::uint32_t>(payload, 0),  load<std::uint32_t>(payload, 4),
                   load<std::uint64_t>(payload, 8),  load<std::uint64_t>(payload, 16),
                   load<std::uint64_t>(payload, 24), load<std::uint64_t>(payload, 32)};
}

std::optional<std::vector<MemoryRegion>> parse_memory_table(Bytes payload, VhostUserError* error) {
  using Result = std::vector<MemoryRegion>;
  if (payload.size() < kMemoryTableHead) return fail<Result>(error, VhostUserError::BadPayload);
  const auto count = load<std::uint32_t>(payload, 0);
  if (count > kVhostUserMaxRegions) return fail<Result>(error, VhostUserError::TooManyRegions);
  // QEMU sends the regions it has; a full table of 8 is also accepted.
  if (payload.size() < kMemoryTableHead + count * kRegionSize) return fail<Result>(error, VhostUserError::BadPayload);
  Result regions;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::size_t at = kMemoryTableHead + i * kRegionSize;
    MemoryRegion r{load<std::uint64_t>(payload, at), load<std::uint64_t>(payload, at + 8),
                   load<std::uint64_t>(payload, at + 16), load<std::uint64_t>(payload, at + 24)};
    if (r.size == 0 || r.guest_phys_addr + r.size < r.guest_phys_addr || r.user_addr + r.size < r.user_addr ||
        r.mmap_offset + r.size < r.mmap_offset)
      return fail<Result>(error, VhostUserError::BadRegion);
    regions.push_back(r);
  }
  return regions;
}

std::vector<std::uint8_t> emit_vhost_user_reply(std::uint32_t request, Bytes payload) {
  std::vector<std::uint8_t> out;
  append(out, request);
  append(out, kVhostUserVersion | kVhostUserFlagReply);
  append(out, static_cast<std::uint32_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

std::vector<std::uint8_t> emit_u64_reply(std::uint32_t request, std::uint64_t value) {
  std::uint8_t payload[8];
  std::memcpy(payload, &value, 8);
  return emit_vhost_user_reply(request, payload);
}

std::vector<std::uint8_t> emit_vring_state_reply(std::uint32_t request, VringState state) {
  std::uint8_t payload[8];
  std::memcpy(payload, &state.index, 4);
  std::memcpy(payload + 4, &state.num, 4);
  return emit_vhost_user_reply(request, payload);
}

std::vector<std::uint8_t> emit_vhost_user_message(std::uint32_t request, Bytes payload) {
  std::vector<std::uint8_t> out;
  append(out, request);
  append(out, kVhostUserVersion);
  append(out, static_cast<std::uint32_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

std::vector<std::uint8_t> emit_memory_table(const std::vector<MemoryRegion>& regions) {
  std::vector<std::uint8_t> payload;
  append(payload, static_cast<std::uint32_t>(regions.size()));
  append(payload, std::uint32_t{0});
  for (const auto& r : regions) {
    append(payload, r.guest_phys_addr);
    append(payload, r.size);
    append(payload, r.user_addr);
    append(payload, r.mmap_offset);
  }
  return payload;
}

}  // namespace vnet::wire
