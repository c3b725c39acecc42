// The vhost-user control protocol (QEMU docs/interop/vhost-user.rst), as
// spoken by a front end (QEMU) to a back end (vnet) over a unix stream
// socket: a 12-byte header, then `size` bytes of payload; file descriptors
// (guest memory, eventfds) ride along as SCM_RIGHTS.
//
//   0  u32 request
//   4  u32 flags: bits 0-1 version (1), bit 2 reply, bit 3 "reply wanted"
//   8  u32 size of the payload
//
// All fields are in the host's byte order: both ends share a host. The
// front end may be another user's, or malicious: every payload is checked
// against the size its request needs before anything in it is used.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "wire/bytes.hpp"

namespace vnet::wire {

enum class VhostUserRequest : std::uint32_t {
  GetFeatures = 1,
  SetFeatures = 2,
  SetOwner = 3,
  ResetOwner = 4,
  SetMemTable = 5,
  SetLogBase = 6,
  SetLogFd = 7,
  SetVringNum = 8,
  SetVringAddr = 9,
  SetVringBase = 10,
  GetVringBase = 11,
  SetVringKick = 12,
  SetVringCall = 13,
  SetVringErr = 14,
  GetProtocolFeatures = 15,
  SetProtocolFeatures = 16,
  GetQueueNum = 17,
  SetVringEnable = 18,
  SendRarp = 19,
  NetSetMtu = 20,
};

inline constexpr std::size_t kVhostUserHeaderSize = 12;
inline constexpr std::uint32_t kVhostUserVersion = 1;
inline constexpr std::uint32_t kVhostUserFlagReply = 1u << 2;
inline constexpr std::uint32_t kVhostUserFlagNeedReply = 1u << 3;
// The largest payload vnet reads; the largest it understands is a memory
// table (8 + 8 * 32 bytes). Longer messages end the connection.
inline constexpr std::uint32_t kVhostUserMaxPayload = 4096;
inline constexpr std::size_t kVhostUserMaxRegions = 8;
// Bit 8 of a kick/call/err payload: no file descriptor comes with it.
inline constexpr std::uint64_t kVhostUserNoFd = 1u << 8;

enum class VhostUserError : std::uint8_t {
  None,
  Truncated,    // shorter than the header, or than its own size field
  BadVersion,   // flags do not carry version 1
  TooLong,      // size above kVhostUserMaxPayload
  BadPayload,   // the payload is shorter (or longer) than the request needs
  BadRegion,    // a memory region of size 0, or whose end overflows 64 bits
  TooManyRegions,
};

const char* to_string(VhostUserError e);

struct VhostUserHeader {
  std::uint32_t request = 0;
  std::uint32_t flags = 0;
  std::uint32_t size = 0;
};

// Parses the header; `size` is checked against the limit, not against the
// bytes at hand (the payload may still be on its way).
std::optional<VhostUserHeader> parse_vhost_user_header(Bytes bytes, VhostUserError* error);

struct VringState {
  std::uint32_t index = 0;
  std::uint32_t num = 0;
};

struct VringAddr {
  std::uint32_t index = 0;
  std::uint32_t flags = 0;
  std::uint64_t desc = 0;   // front end's virtual addresses
  std::uint64_t used = 0;
  std::uint64_t avail = 0;
  std::uint64_t log = 0;
};

struct MemoryRegion {
  std::uint64_t guest_phys_addr = 0;
  std::uint64_t size = 0;
  std::uint64_t user_addr = 0;    // where the front end mapped it
  std::uint64_t mmap_offset = 0;  // offset of the region in its fd
};

// Payload parsers: nullopt (and *error) when the payload does not fit.
std::optional<std::uint64_t> parse_u64_payload(Bytes payload, VhostUserError* error);
std::optional<VringState> parse_vring_state(Bytes payload, VhostUserError* error);
std::optional<VringAddr> parse_vring_addr(Bytes payload, VhostUserError* error);
std::optional<std::vector<MemoryRegion>> parse_memory_table(Bytes payload, VhostUserError* error);

// A reply: the request echoed with the reply flag, and its payload.
std::vector<std::uint8_t> emit_vhost_user_reply(std::uint32_t request, Bytes payload);
std::vector<std::uint8_t> emit_u64_reply(std::uint32_t request, std::uint64_t value);
std::vector<std::uint8_t> emit_vring_state_reply(std::uint32_t request, VringState state);
// What a front end sends (for tests and fuzzing).
std::vector<std::uint8_t> emit_vhost_user_message(std::uint32_t request, Bytes payload);
std::vector<std::uint8_t> emit_memory_table(const std::vector<MemoryRegion>& regions);

}  // namespace vnet::wire
