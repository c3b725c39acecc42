// Offloads between TAP devices: the kernel's virtio-net header.
//
// A TAP opened with IFF_VNET_HDR and TSO/checksum offload hands vnet whole
// 64 KiB TCP segments with a header that says how to cut them (GSO) and
// which checksum is left to fill in. Between two such TAPs the segment
// crosses the switch whole, which is what makes TCP between guests fast.
// Every other port (QEMU sockets, captures, impairment queues, the NAT)
// needs ordinary frames: resolve_offload() cuts the segment into MTU-sized
// frames and completes the checksums, as a NIC would.
#pragma once

#include <cstdint>
#include <functional>

#include "wire/bytes.hpp"

namespace vnet {

// The virtio_net_hdr fields (legacy layout, host byte order, 10 bytes).
struct Offload {
  static constexpr std::uint8_t kNeedsCsum = 1;
  static constexpr std::uint8_t kGsoNone = 0, kGsoTcpV4 = 1, kGsoUdp = 3, kGsoTcpV6 = 4, kGsoEcn = 0x80;
  static constexpr std::size_t kHeaderLen = 10;

  std::uint8_t flags = 0;
  std::uint8_t gso_type = kGsoNone;
  std::uint16_t hdr_len = 0;
  std::uint16_t gso_size = 0;
  std::uint16_t csum_start = 0;
  std::uint16_t csum_offset = 0;

  bool needs_csum() const { return flags & kNeedsCsum; }
  bool is_gso() const { return (gso_type & ~kGsoEcn) != kGsoNone; }
  // True when the frame is not a plain, complete Ethernet frame.
  bool pending() const { return needs_csum() || is_gso(); }

  static Offload parse(wire::Bytes header);  // header.size() >= kHeaderLen
  void emit(wire::MutBytes header) const;
};

// Turns an offloaded frame into plain frames, calling emit for each (each
// span valid only during the call; scratch must hold a full frame). Returns
// false, emitting nothing, for frames it cannot resolve (unknown GSO type,
// headers that do not match what the offload header claims).
bool resolve_offload(wire::Bytes frame, const Offload& offload, wire::MutBytes scratch,
                     const std::function<void(wire::Bytes)>& emit);

}  // namespace vnet
