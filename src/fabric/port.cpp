#include "fabric/port.hpp"

#include "fabric/network.hpp"

namespace vnet {

VlanConfig VlanConfig::make_plain() {
  VlanConfig c;
  c.tagged.set();
  c.tagged.reset(0);
  c.tagged.reset(4095);
  return c;
}

VlanConfig VlanConfig::access(std::uint16_t vid) {
  VlanConfig c;
  c.native = vid;
  c.plain = false;
  return c;
}

VlanConfig VlanConfig::trunk(const std::bitset<4096>& vlans, std::uint16_t native) {
  VlanConfig c;
  c.tagged = vlans;
  c.tagged.reset(0);
  c.tagged.reset(4095);
  c.native = native;
  c.plain = false;
  return c;
}

std::string VlanConfig::trunk_text() const {
  if (!is_trunk()) return "";
  if (tagged.count() == kMaxId) return "all";
  std::string out;
  for (std::size_t v = 1; v <= kMaxId; ++v) {
    if (!tagged[v]) continue;
    std::size_t end = v;
    while (end + 1 <= kMaxId && tagged[end + 1]) ++end;
    if (!out.empty()) out += ',';
    out += std::to_string(v);
    if (end > v) out += '-' + std::to_string(end);
    v = end;
  }
  return out;
}

Port::Port(EventLoop& loop, Network& net, PortId id) : loop_(loop), net_(net), id_(id) {}
Port::~Port() = default;

void Port::deliver(wire::Bytes frame, const Offload* offload) {
  if (!link_up_) {
    counters_.drop_down++;
    return;
  }
  if (offload && offload->pending()) {
    if (accepts_offload() && !egress_) send_offloaded(frame, *offload);
    else resolve(frame, *offload, &Port::deliver);
    return;
  }
  if (egress_) egress_->process(frame);
  else to_peer(frame);
}

void Port::resolve(wire::Bytes frame, const Offload& offload, void (Port::*next)(wire::Bytes, const Offload*)) {
  Network::ScratchLease scratch(net_);
  if (!resolve_offload(frame, offload, scratch.bytes(), [this, next](wire::Bytes f) { (this->*next)(f, nullptr); }))
    counters_.drop_malformed++;
}

void Port::to_peer(wire::Bytes frame) {
  // Link state is checked again: a frame may have waited in the impairment queue.
  if (!link_up_) {
    counters_.drop_down++;
    return;
  }
  send_to_peer(frame);
}

void Port::from_peer(wire::Bytes frame, const Offload* offload) {
  if (!link_up_) {
    counters_.drop_down++;
    return;
  }
  if (offload && offload->pending() && ingress_) {
    resolve(frame, *offload, &Port::from_peer);
    return;
  }
  if (ingress_) ingress_->process(frame);
  else to_network(frame, offload);
}

void Port::to_network(wire::Bytes frame, const Offload* offload) {
  if (!link_up_) {
    counters_.drop_down++;
    return;
  }
  net_.ingress(*this, frame, offload);
}

std::size_t Port::egress_room() const {
  const std::size_t own = output_room();
  return egress_ ? std::min(own, egress_->queue_room()) : own;
}

void Port::close_later() { net_.remove_port_later(id_); }

void Port::set_impairment(Direction dir, const ImpairmentParams& params) {
  // Each direction gets its own random stream so tests can reason per direction.
  auto make = [&](auto sink, std::uint64_t salt, int direction) -> std::unique_ptr<Impairment> {
    if (!params.active() && !group_) return nullptr;
    return std::make_unique<Impairment>(loop_, params, counters_, sink,
                                        (std::uint64_t{id_} << 32) ^ salt ^ monotonic_now(), group_, direction);
  };
  if (dir == Direction::In || dir == Direction::Both)
    ingress_ = make([this](wire::Bytes f) { to_network(f); }, 1, 0);
  if (dir == Direction::Out || dir == Direction::Both)
    egress_ = make([this](wire::Bytes f) { to_peer(f); }, 2, 1);
}

void Port::set_bandwidth_group(std::shared_ptr<BandwidthGroup> group) {
  // The stages are rebuilt with their own settings; frames waiting in them
  // are dropped, as when impairments change.
  const ImpairmentParams in = ingress_ ? ingress_->params() : ImpairmentParams{};
  const ImpairmentParams out = egress_ ? egress_->params() : ImpairmentParams{};
  group_ = std::move(group);
  set_impairment(Direction::In, in);
  set_impairment(Direction::Out, out);
}

void Port::inherit_settings(const Port& listener) {
  set_parent(listener.id());
  set_spec(listener.spec());
  set_vlan_config(listener.vlan_config());
  set_link(listener.link_up());
  for (Direction dir : {Direction::In, Direction::Out})
    if (const ImpairmentParams* params = listener.impairment(dir); params && params->active())
      set_impairment(dir, *params);
  if (listener.bandwidth_group()) set_bandwidth_group(listener.bandwidth_group());
}

const ImpairmentParams* Port::impairment(Direction dir) const {
  const auto& stage = dir == Direction::In ? ingress_ : egress_;
  return stage ? &stage->params() : nullptr;
}

}  // namespace vnet
