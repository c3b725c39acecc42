#include "fabric/network.hpp"

#include <cstring>

#include "core/log.hpp"
#include "fabric/guard.hpp"
#include "wire/ethernet.hpp"

namespace vnet {

const char* to_string(NetworkMode mode) {
  switch (mode) {
    case NetworkMode::Switch: return "switch";
    case NetworkMode::Hub: return "hub";
    case NetworkMode::Nat: return "nat";
    case NetworkMode::Internal: return "internal";
    case NetworkMode::Hostonly: return "hostonly";
    case NetworkMode::Bridged: return "bridged";
    case NetworkMode::KernelNat: return "kernel-nat";
  }
  return "?";
}

Network::Network(EventLoop& loop, std::string name, NetworkOptions options)
    : loop_(loop), name_(std::move(name)), options_(options), aging_timer_(loop, [this] { age_macs(); }) {
  macs_.reserve(1024);
  aging_timer_.arm_in(aging_interval());
}

Network::~Network() {
  life_.expire();  // nothing posted from here on may run
  // Ports refer to the network: destroy them first, in id order.
  frame_ports_.clear();
  mirror_ports_.clear();
  ports_.clear();
}

Port& Network::add_port(std::unique_ptr<Port> port) {
  Port& ref = *port;
  ports_[port->id()] = std::move(port);
  rebuild_port_lists();
  return ref;
}

bool Network::remove_port(PortId id) {
  auto it = ports_.find(id);
  if (it == ports_.end()) return false;
  // Take the port out of the forwarding lists before it is destroyed.
  auto doomed = std::move(it->second);
  ports_.erase(it);
  forget_port(id);
  rebuild_port_lists();
  // Connections accepted by a listener go with it.
  std::vector<PortId> children;
  for (auto& [cid, p] : ports_)
    if (p->parent() == id) children.push_back(cid);
  for (PortId c : children) remove_port(c);
  doomed.reset();
  return true;
}

void Network::remove_port_later(PortId id) {
  loop_.post(life_, [this, id] {
    if (remove_port(id)) log::info("{}: port {} removed (peer gone)", name_, id);
  });
}

Port* Network::find_port(PortId id) {
  auto it = ports_.find(id);
  return it == ports_.end() ? nullptr : it->second.get();
}

void Network::rebuild_port_lists() {
  frame_ports_.clear();
  mirror_ports_.clear();
  guard_servers_ = false;
  for (auto& [id, p] : ports_) {
    if (p->is_mirror()) mirror_ports_.push_back(p.get());
    else if (p->carries_frames()) frame_ports_.push_back(p.get());
    guard_servers_ = guard_servers_ || p->runs_network_servers();
  }
}

BandwidthGroup& Network::set_bandwidth_group(const std::string& name, std::uint64_t rate_bps,
                                             std::uint64_t burst_bytes) {
  auto& group = bandwidth_groups_[name];
  if (!group) group = std::make_shared<BandwidthGroup>(loop_, name);
  group->rate_bps = rate_bps;
  group->burst_bytes = burst_bytes;
  return *group;
}

std::shared_ptr<BandwidthGroup> Network::find_bandwidth_group(const std::string& name) const {
  auto it = bandwidth_groups_.find(name);
  return it == bandwidth_groups_.end() ? nullptr : it->second;
}

PortId Network::port_of(const wire::MacAddr& mac) const {
  auto it = macs_.find(mac);
  if (it == macs_.end() || monotonic_now() - it->second.last_seen >= options_.mac_aging) return 0;
  return it->second.port;
}

namespace {

// Sets a value for the lifetime of a scope and restores the old one.
template <typename T>
class ScopedValue {
 public:
  ScopedValue(T& slot, T value) : slot_(slot), saved_(slot) { slot_ = value; }
  ~ScopedValue() { slot_ = saved_; }
  ScopedValue(const ScopedValue&) = delete;
  ScopedValue& operator=(const ScopedValue&) = delete;

 private:
  T& slot_;
  T saved_;
};

}  // namespace

// One frame's two wire forms, untagged and tagged with its VLAN: the one it
// arrived in is used as is; the other is built on first need.
class Network::Forms {
 public:
  Forms(Network& net, wire::Bytes frame, const wire::EthernetFrame& eth, std::uint16_t vid, const Offload* offload)
      : net_(net), frame_(frame), vid_(vid), offload_(offload), pcp_(eth.vlan_pcp()) {
    if (!eth.has_vlan()) untagged_ = frame, untagged_offload_ = offload;
    else if (eth.vlan_id() == vid) tagged_ = frame, tagged_offload_ = offload;
    original_tag_len_ = eth.has_vlan() ? 4 : 0;
  }

  std::uint16_t vid() const { return vid_; }

  void deliver(Port& to) {
    const VlanConfig& c = to.vlan_config();
    if (c.native == vid_) {
      if (untagged_.empty()) build_untagged();
      to.deliver(untagged_, untagged_offload_);
    } else if (c.tagged[vid_]) {
      if (tagged_.empty()) build_tagged();
      to.deliver(tagged_, tagged_offload_);
    }
  }

  static bool carries(const Port& to, std::uint16_t vid) {
    return to.vlan_config().native == vid || to.vlan_config().tagged[vid];
  }

 private:
  // The offload header of a form whose L3 start moved by `shift` bytes.
  const Offload* shifted(Offload& slot, int shift) {
    if (!offload_) return nullptr;
    slot = *offload_;
    if (slot.needs_csum()) slot.csum_start = static_cast<std::uint16_t>(slot.csum_start + shift);
    if (slot.hdr_len) slot.hdr_len = static_cast<std::uint16_t>(slot.hdr_len + shift);
    return &slot;
  }

  void build_untagged() {
    std::uint8_t* out = net_.vlan_scratch(0);
    const std::size_t body = frame_.size() - 12 - original_tag_len_;
    std::memcpy(out, frame_.data(), 12);
    std::memcpy(out + 12, frame_.data() + 12 + original_tag_len_, body);
    untagged_ = {out, 12 + body};
    untagged_offload_ = shifted(untagged_slot_, -static_cast<int>(original_tag_len_));
  }

  void build_tagged() {
    std::uint8_t* out = net_.vlan_scratch(1);
    const std::size_t body = frame_.size() - 12 - original_tag_len_;
    std::memcpy(out, frame_.data(), 12);
    wire::MutBytes header(out, 16);
    wire::store_be16(header, 12, static_cast<std::uint16_t>(wire::EtherType::Vlan));
    wire::store_be16(header, 14, static_cast<std::uint16_t>((pcp_ << 13) | vid_));
    std::memcpy(out + 16, frame_.data() + 12 + original_tag_len_, body);
    tagged_ = {out, 16 + body};
    tagged_offload_ = shifted(tagged_slot_, 4 - static_cast<int>(original_tag_len_));
  }

  Network& net_;
  wire::Bytes frame_;
  std::uint16_t vid_;
  const Offload* offload_;
  std::uint8_t pcp_;
  std::size_t original_tag_len_ = 0;
  wire::Bytes untagged_, tagged_;
  const Offload* untagged_offload_ = nullptr;
  const Offload* tagged_offload_ = nullptr;
  Offload untagged_slot_, tagged_slot_;
};

std::uint8_t* Network::vlan_scratch(int which) {
  auto& buffer = vlan_scratch_[ingress_depth_ - 1][which];
  if (!buffer) buffer.reset(new std::uint8_t[kVlanScratch]);  // once per network and depth
  return buffer.get();
}

void Network::ingress(Port& from, wire::Bytes frame, const Offload* offload) {
  auto& c = from.counters();
  if (ingress_depth_ >= kMaxIngressDepth) {
    c.drop_loop++;
    return;
  }
  ScopedValue<int> depth(ingress_depth_, ingress_depth_ + 1);
  ScopedValue<PortId> current(ingress_port_, from.id());
  if (frame.size() < wire::EthernetFrame::kHeaderLen) {
    c.drop_runt++;
    return;
  }
  const bool gso = offload && offload->is_gso();
  if (frame.size() > (gso ? kMaxOffloadFrame : max_frame())) {
    c.drop_oversize++;
    return;
  }
  loop_.note_frame(frame.size());
  auto eth = wire::EthernetFrame::parse(frame);
  if (!eth) {
    c.drop_malformed++;
    return;
  }
  const wire::MacAddr src = eth->src();
  if (src.is_multicast()) {
    // A group address is never a sender: such frames are forged or broken.
    c.drop_malformed++;
    return;
  }
  // Classify: a tag (VID 0 is a priority tag: untagged) the port carries,
  // or its native VLAN for untagged frames.
  const VlanConfig& in = from.vlan_config();
  std::uint16_t vid;
  if (eth->has_vlan() && eth->vlan_id() != 0) {
    vid = eth->vlan_id();
    if (vid > VlanConfig::kMaxId || !(in.tagged[vid] || vid == in.native)) {
      c.drop_vlan++;
      return;
    }
  } else {
    vid = in.native;
    if (vid == VlanConfig::kNoNative) {
      c.drop_vlan++;
      return;
    }
  }
  if (guard_servers_ && !from.runs_network_servers() && is_server_message(eth->ethertype(), eth->payload())) {
    c.drop_guard++;
    return;
  }
  c.rx_frames++;
  c.rx_bytes += frame.size();

  for (Port* m : mirror_ports_) m->deliver(frame, offload);

  Forms forms(*this, frame, *eth, vid, offload);
  const Nanos now = monotonic_now();
  if (options_.mode == NetworkMode::Hub) {
    flood(from, forms);
    return;
  }
  learn(from, src, now);
  const wire::MacAddr dst = eth->dst();
  if (!dst.is_multicast()) {
    auto it = macs_.find(dst);
    if (it != macs_.end() && now - it->second.last_seen < options_.mac_aging) {
      if (it->second.port == from.id()) return;  // already on the segment it came from
      Port* to = find_port(it->second.port);
      if (to && Forms::carries(*to, vid)) {
        forms.deliver(*to);
        return;
      }
    }
  }
  flood(from, forms);
}

void Network::flood(Port& from, Forms& forms) {
  for (Port* p : frame_ports_)
    if (p != &from) forms.deliver(*p);
}

Network::ScratchLease::ScratchLease(Network& net) : net_(net) {
  if (net_.scratch_depth_ >= kMaxScratchDepth) {
    ++net_.scratch_depth_;  // balanced by the destructor; bytes_ stays empty
    return;
  }
  auto& slot = net_.offload_scratch_[static_cast<std::size_t>(net_.scratch_depth_++)];
  if (!slot) slot.reset(new std::uint8_t[kOffloadScratch]);
  bytes_ = {slot.get(), kOffloadScratch};
}

Network::ScratchLease::~ScratchLease() { --net_.scratch_depth_; }

void Network::learn(Port& from, const wire::MacAddr& src, Nanos now) {
  auto it = macs_.find(src);
  if (it != macs_.end()) {
    if (it->second.port != from.id()) {
      // The MAC moved (a VM migrated or was re-plugged): follow it. If the
      // old port is still here, two peers use one MAC: say so.
      if (find_port(it->second.port)) note_duplicate(src, it->second.port, from);
      auto old = macs_learned_.find(it->second.port);
      if (old != macs_learned_.end() && old->second > 0) old->second--;
      std::uint32_t& count = macs_learned_[from.id()];
      if (count >= options_.macs_per_port) {
        from.counters().mac_limit++;
        macs_.erase(it);
        return;
      }
      count++;
      it->second.port = from.id();
    }
    it->second.last_seen = now;
    return;
  }
  std::uint32_t& count = macs_learned_[from.id()];
  if (count >= options_.macs_per_port) {
    from.counters().mac_limit++;
    return;
  }
  count++;
  macs_.emplace(src, MacEntry{from.id(), now});
}

void Network::note_duplicate(const wire::MacAddr& mac, PortId first, Port& second) {
  duplicate_mac_events_++;
  second.counters().mac_duplicate++;
  for (auto& d : duplicate_macs_) {
    if (d.mac == mac) {
      d.times++;
      d.first_port = first;
      d.second_port = second.id();
      return;
    }
  }
  if (duplicate_macs_.size() >= kMaxDuplicateMacs) return;
  duplicate_macs_.push_back({mac, first, second.id(), 1});
  log::warn("{}: MAC {} is used by port {} and port {}: give each guest its own MAC (`vnet attach {}` prints one)",
            name_, mac.to_string(), first, second.id(), name_);
}

void Network::forget_port(PortId id) {
  std::erase_if(macs_, [id](const auto& kv) { return kv.second.port == id; });
  macs_learned_.erase(id);
  // A duplicate ends when one of its two ports goes.
  std::erase_if(duplicate_macs_, [id](const DuplicateMac& d) { return d.first_port == id || d.second_port == id; });
}

Nanos Network::aging_interval() const {
  // Often enough that an entry outlives its aging time by at most a quarter.
  return std::clamp<Nanos>(options_.mac_aging / 4, 10 * kMillis, kSeconds);
}

void Network::age_macs() {
  const Nanos now = monotonic_now();
  for (auto it = macs_.begin(); it != macs_.end();) {
    if (now - it->second.last_seen >= options_.mac_aging) {
      auto count = macs_learned_.find(it->second.port);
      if (count != macs_learned_.end() && count->second > 0) count->second--;
      it = macs_.erase(it);
    } else {
      ++it;
    }
  }
  aging_timer_.arm_in(aging_interval());
}

}  // namespace vnet
