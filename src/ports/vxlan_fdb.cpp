#include "ports/vxlan_fdb.hpp"

namespace vnet {

bool VxlanFdb::learn(const wire::MacAddr& mac, Remote remote, Nanos now) {
  if (mac.is_multicast() || mac.is_zero()) return true;
  if (auto it = entries_.find(mac); it != entries_.end()) {
    it->second = {remote, now};
    return true;
  }
  if (entries_.size() >= kMaxEntries) sweep(now);
  if (entries_.size() >= kMaxEntries) return false;
  entries_.emplace(mac, Entry{remote, now});
  return true;
}

std::optional<VxlanFdb::Remote> VxlanFdb::lookup(const wire::MacAddr& mac, Nanos now) const {
  if (mac.is_multicast()) return std::nullopt;
  auto it = entries_.find(mac);
  if (it == entries_.end() || now - it->second.seen > kAge) return std::nullopt;
  return it->second.remote;
}

void VxlanFdb::sweep(Nanos now) {
  if (now - last_sweep_ < kSeconds) return;
  last_sweep_ = now;
  std::erase_if(entries_, [&](const auto& item) { return now - item.second.seen > kAge; });
}

}  // namespace vnet
