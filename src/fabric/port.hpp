// A port: where frames enter and leave a network.
//
// Subclasses (one per transport, in ports/) turn an fd into frames: they call
// from_peer() for each frame read, and implement send_to_peer() for frames the
// network hands them. The base class keeps what every port shares: counters,
// link state, VLAN membership and the impairment stages of both directions.
#pragma once

#include <bitset>
#include <cstdint>
#include <memory>
#include <string>

#include "core/event_loop.hpp"
#include "fabric/counters.hpp"
#include "fabric/impairment.hpp"
#include "fabric/offload.hpp"
#include "wire/bytes.hpp"

namespace vnet {

class Network;
using PortId = std::uint32_t;

// A port's 802.1Q membership (how the network uses it: network.hpp).
//  - plain (no vlan=, no trunk=): untagged frames are VLAN 0's (the untagged
//    domain); frames of every other VLAN pass tagged, as on a trunk.
//  - access (vlan=N): untagged on the wire, VLAN N only.
//  - trunk (trunk=LIST or all): the listed VLANs, tagged; untagged frames
//    are dropped unless vlan=N names a native VLAN for them.
struct VlanConfig {
  static constexpr std::uint16_t kNoNative = 0xffff;
  static constexpr std::uint16_t kMaxId = 4094;

  std::uint16_t native = 0;  // the VLAN of untagged frames; kNoNative: none
  std::bitset<4096> tagged;  // VLANs carried with their tag
  bool plain = true;

  static VlanConfig make_plain();
  static VlanConfig access(std::uint16_t vid);
  static VlanConfig trunk(const std::bitset<4096>& vlans, std::uint16_t native = kNoNative);
  // "" (plain), or the trunk's VLAN list as "10,20-29" / "all".
  std::string trunk_text() const;
  bool is_trunk() const { return !plain && tagged.any(); }
};

enum class Direction { In, Out, Both };

class Port {
 public:
  Port(EventLoop& loop, Network& net, PortId id);
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;
  virtual ~Port();

  PortId id() const { return id_; }
  Network& network() { return net_; }

  // Network -> peer, through the egress impairments and link state. An
  // offloaded frame (TSO segment, partial checksum) stays whole only if the
  // port takes offloads and has no impairments; otherwise it is resolved here.
  void deliver(wire::Bytes frame, const Offload* offload = nullptr);

  // What status shows.
  virtual std::string kind() const = 0;
  virtual std::string peer() const { return ""; }
  virtual std::string state() const { return "up"; }
  std::string spec() const { return spec_; }
  void set_spec(std::string s) { spec_ = std::move(s); }
  // A listener or other control-only port carries no frames itself.
  virtual bool carries_frames() const { return true; }
  // Capture ports receive a copy of every frame the network carries.
  virtual bool is_mirror() const { return false; }
  // Ports created by another (connections accepted by a listener).
  PortId parent() const { return parent_; }
  void set_parent(PortId p) { parent_ = p; }
  // A listener's connection takes what was set on the listener: its VLANs,
  // link state, impairments and bandwidth group (`vnet port set LISTENER`
  // is how a user means "every guest that connects here").
  void inherit_settings(const Port& listener);
  // Ports that pass virtio-net headers through (TAP with IFF_VNET_HDR).
  virtual bool accepts_offload() const { return false; }
  // The port is vnet's own router and DHCP servers (a NAT gateway): while
  // one is on the network, no other port may send as a server (fabric/guard).
  virtual bool runs_network_servers() const { return false; }
  // Frames waiting to go out to the peer (for status).
  virtual std::size_t queued_frames() const { return 0; }
  // Bytes of frames the port can still queue toward its peer: the smaller
  // of its egress impairment's room and its own output queue's. The NAT
  // sizes TCP data in flight to a guest from it, since a frame that finds
  // the queue full is lost and costs the flow a retransmission timeout.
  std::size_t egress_room() const;

  bool link_up() const { return link_up_; }
  void set_link(bool up) { link_up_ = up; }
  // The access (or native) VLAN, 0 for none: what status shows as "vlan".
  std::uint16_t vlan() const { return vlan_.native == VlanConfig::kNoNative ? 0 : vlan_.native; }
  // 0: plain; N: an access port of VLAN N.
  void set_vlan(std::uint16_t v) { vlan_ = v == 0 ? VlanConfig::make_plain() : VlanConfig::access(v); }
  const VlanConfig& vlan_config() const { return vlan_; }
  void set_vlan_config(const VlanConfig& config) { vlan_ = config; }
  void set_impairment(Direction dir, const ImpairmentParams& params);
  const ImpairmentParams* impairment(Direction dir) const;
  // Joins a bandwidth group (both directions), or leaves it with nullptr.
  void set_bandwidth_group(std::shared_ptr<BandwidthGroup> group);
  const std::shared_ptr<BandwidthGroup>& bandwidth_group() const { return group_; }

  PortCounters& counters() { return counters_; }
  const PortCounters& counters() const { return counters_; }

 protected:
  // Peer -> network, through the ingress impairments and link state.
  void from_peer(wire::Bytes frame, const Offload* offload = nullptr);
  // Sends (or queues) one frame to the peer; counts tx or an overflow drop.
  virtual void send_to_peer(wire::Bytes frame) = 0;
  // Room left in the port's own output queue (unbounded if it has none).
  virtual std::size_t output_room() const { return SIZE_MAX; }
  // Same for an offloaded frame; only called when accepts_offload().
  virtual void send_offloaded(wire::Bytes frame, const Offload&) { send_to_peer(frame); }
  // Asks the network to remove this port once the current events are handled.
  void close_later();

  EventLoop& loop_;
  Network& net_;
  PortCounters counters_;

 private:
  void to_network(wire::Bytes frame, const Offload* offload = nullptr);
  void to_peer(wire::Bytes frame);
  // Cuts an offloaded frame into plain frames for `next`; counts failures.
  void resolve(wire::Bytes frame, const Offload& offload, void (Port::*next)(wire::Bytes, const Offload*));

  PortId id_;
  PortId parent_ = 0;
  std::string spec_;
  bool link_up_ = true;
  VlanConfig vlan_ = VlanConfig::make_plain();
  std::unique_ptr<Impairment> ingress_;
  std::unique_ptr<Impairment> egress_;
  std::shared_ptr<BandwidthGroup> group_;
};

}  // namespace vnet
