// Per-port counters, in the spirit of VMware's /proc/vmnet and `ip -s link`.
#pragma once

#include <cstdint>

namespace vnet {

struct PortCounters {
  // Frames carried. "rx" is from the peer into the network, "tx" from the
  // network out to the peer.
  std::uint64_t rx_frames = 0, rx_bytes = 0;
  std::uint64_t tx_frames = 0, tx_bytes = 0;
  // Drops, by cause.
  std::uint64_t drop_overflow = 0;   // egress queue full (slow or stuck peer)
  std::uint64_t drop_oversize = 0;   // larger than MTU + Ethernet/802.1Q header
  std::uint64_t drop_runt = 0;       // shorter than an Ethernet header
  std::uint64_t drop_malformed = 0;  // bad framing (length prefix), bad source MAC
  std::uint64_t drop_down = 0;       // link set down
  std::uint64_t drop_vlan = 0;       // 802.1Q tag not allowed on this port
  std::uint64_t drop_loop = 0;       // ports answering each other deeper than Network::kMaxIngressDepth
  std::uint64_t drop_guard = 0;      // a guest speaking as the network's router or DHCP server (fabric/guard)
  std::uint64_t drop_tunnel = 0;     // tunnel datagram not ours: another VNI, or a sender that is no endpoint
  std::uint64_t mac_limit = 0;       // source MAC not learned: port at its table limit
  std::uint64_t mac_duplicate = 0;   // source MAC last seen on another live port (two guests, one MAC)
  // Link impairments applied (both directions added up).
  std::uint64_t imp_lost = 0, imp_duplicated = 0, imp_reordered = 0, imp_delayed = 0, imp_shaped = 0;
  std::uint64_t imp_queue_drop = 0;  // impairment queue full (rate limit backlog)
};

}  // namespace vnet
