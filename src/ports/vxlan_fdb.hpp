// Which remote tunnel endpoint each inner MAC address lives behind, as the
// forwarding database of a Linux vxlan device: learned from the inner source
// MAC of every datagram accepted, forgotten after kAge without traffic.
//
// The table is fed by the network, so it is bounded: when full, stale
// entries are swept (at most once a second, so a flood of made-up MACs
// costs no sweep per datagram), and a MAC that still finds no room is not
// learned; frames to it are flooded, which is correct, only slower.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>

#include "core/clock.hpp"
#include "wire/mac.hpp"

namespace vnet {

class VxlanFdb {
 public:
  using Remote = std::uint16_t;  // index into the port's list of endpoints
  static constexpr std::size_t kMaxEntries = 4096;
  static constexpr Nanos kAge = 300 * kSeconds;  // as Linux vxlan's default ageing

  VxlanFdb() { entries_.reserve(kMaxEntries); }

  // `mac` was the source of a frame from `remote` at `now`. Returns false
  // when the table is full and the MAC was not learned. Group MACs are
  // never learned (they are not anyone's address).
  bool learn(const wire::MacAddr& mac, Remote remote, Nanos now);
  // The endpoint a unicast MAC was last seen behind, unless it aged out.
  std::optional<Remote> lookup(const wire::MacAddr& mac, Nanos now) const;
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Remote remote;
    Nanos seen;
  };
  void sweep(Nanos now);

  std::unordered_map<wire::MacAddr, Entry> entries_;
  Nanos last_sweep_ = -kSeconds;
};

}  // namespace vnet
