// A network: a learning switch or a hub joining ports.
//
// Switch mode learns source MACs per port (with aging and a per-port limit,
// so one guest cannot fill the table), forwards known unicast to one port and
// floods broadcast, multicast and unknown unicast to every other port, never
// back out of the ingress port. Hub mode repeats every frame to every other
// port. Capture ports see every frame the network carries, as it entered.
//
// 802.1Q (port.hpp's VlanConfig): an entering frame is classified into one
// VLAN, by its tag if it has one the port carries tagged (or the port's own
// VLAN), else by the port's native VLAN; a frame the port may not carry is
// dropped and counted (drop_vlan). It leaves only through ports that carry
// that VLAN: untagged where it is their native (access) VLAN, tagged where
// they carry it tagged (trunks, plain ports). Pushing or popping a tag builds
// the other form once per frame in a buffer kept per nesting depth (see
// Re-entry), allocated the first time it is needed, never per frame. MAC
// learning is shared across VLANs (one table, as in shared VLAN learning).
//
// Ingress port: while a frame is being forwarded, ingress_port() names the
// port it entered on, so a port that needs to know who sent a frame (the NAT
// gateway binds guest addresses to ports) can ask without widening the
// forwarding path. Outside of ingress() it is 0 (no port has id 0).
//
// Re-entry: a port may send a frame from inside its send_to_peer() (the NAT
// gateway answers ARP, pings, DHCP and TCP segments there). That calls
// ingress() again from inside ingress(). It is safe: the outer call only
// keeps the flat port lists (which change only on add/remove, never while
// forwarding) and its own frame buffer; the inner frame comes from another
// buffer (an offloaded one is cut in a scratch buffer of its own, see
// ScratchLease), and never goes back out of the port
// it came from. Nesting deeper than kMaxIngressDepth is refused and counted
// (drop_loop), so a port that answered every frame with a frame could not
// recurse without bound.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/event_loop.hpp"
#include "fabric/port.hpp"
#include "wire/mac.hpp"

namespace vnet {

// Internal and Hostonly forward as a switch does; they differ in what the
// engine attaches (see docs/modes.md).
enum class NetworkMode { Switch, Hub, Nat, Internal, Hostonly, Bridged, KernelNat };
const char* to_string(NetworkMode mode);

struct NetworkOptions {
  NetworkMode mode = NetworkMode::Switch;
  std::uint32_t mtu = 65520;           // largest L3 payload; frames may add 18 bytes of header
  Nanos mac_aging = 300 * kSeconds;
  std::uint32_t macs_per_port = 1024;  // learned-MAC table limit per port
};

struct MacEntry {
  PortId port;
  Nanos last_seen;
};

// One MAC seen on two ports that both still exist: two guests started with
// the same -device ...,mac= (or none: QEMU's default 52:54:00:12:34:56).
// The second port takes the MAC over, so the first guest's replies go astray.
struct DuplicateMac {
  wire::MacAddr mac;
  PortId first_port;   // where it was learned before
  PortId second_port;  // where it turned up while the first port was still there
  std::uint64_t times = 0;
};

class Network {
 public:
  Network(EventLoop& loop, std::string name, NetworkOptions options);
  ~Network();

  const std::string& name() const { return name_; }
  const NetworkOptions& options() const { return options_; }
  NetworkMode mode() const { return options_.mode; }

  // Ports: ids count up from 1 and are never reused within a network.
  PortId next_port_id() { return next_port_id_++; }
  // Gives back the id just taken, when creating its port failed.
  void release_port_id(PortId id) {
    if (id + 1 == next_port_id_) --next_port_id_;
  }
  Port& add_port(std::unique_ptr<Port> port);
  bool remove_port(PortId id);
  void remove_port_later(PortId id);
  // Work posted on behalf of this network or its ports carries this token.
  const LifeToken& life() const { return life_; }
  Port* find_port(PortId id);
  const std::map<PortId, std::unique_ptr<Port>>& ports() const { return ports_; }

  // Bandwidth groups (fabric/bandwidth_group.hpp), by name. Setting an
  // existing group changes its rate for every member at once.
  BandwidthGroup& set_bandwidth_group(const std::string& name, std::uint64_t rate_bps, std::uint64_t burst_bytes);
  std::shared_ptr<BandwidthGroup> find_bandwidth_group(const std::string& name) const;
  // False if no such group; the caller checks it has no members left.
  bool remove_bandwidth_group(const std::string& name) { return bandwidth_groups_.erase(name) > 0; }
  const std::map<std::string, std::shared_ptr<BandwidthGroup>>& bandwidth_groups() const { return bandwidth_groups_; }

  // A frame from a port's peer enters the fabric.
  void ingress(Port& from, wire::Bytes frame, const Offload* offload = nullptr);
  // The port the frame being forwarded entered on; 0 outside ingress().
  PortId ingress_port() const { return ingress_port_; }
  // The port a MAC was last learned on (switch mode), if still fresh.
  PortId port_of(const wire::MacAddr& mac) const;
  static constexpr int kMaxIngressDepth = 4;
  // Room to cut one offloaded segment into frames (see offload.hpp), held
  // for the duration of one cut. Cuts nest (a port that answers a frame
  // while it is being cut may send an offloaded frame that is cut in turn,
  // e.g. the NAT gateway's TCP super-segments), so each level holds its own
  // buffer; the lease is empty (bytes() has size 0) past kMaxScratchDepth.
  class ScratchLease {
   public:
    explicit ScratchLease(Network& net);
    ~ScratchLease();
    ScratchLease(const ScratchLease&) = delete;
    ScratchLease& operator=(const ScratchLease&) = delete;
    wire::MutBytes bytes() const { return bytes_; }

   private:
    Network& net_;
    wire::MutBytes bytes_;
  };
  static constexpr int kMaxScratchDepth = 2 * kMaxIngressDepth;

  const std::unordered_map<wire::MacAddr, MacEntry>& mac_table() const { return macs_; }
  // MACs used by two live ports (at most kMaxDuplicateMacs listed; each
  // logged once). The count of every such event is duplicate_mac_events().
  const std::vector<DuplicateMac>& duplicate_macs() const { return duplicate_macs_; }
  std::uint64_t duplicate_mac_events() const { return duplicate_mac_events_; }
  static constexpr std::size_t kMaxDuplicateMacs = 64;
  std::size_t max_frame() const { return options_.mtu + 18; }
  // A TSO segment may carry up to an IP datagram's worth whatever the MTU.
  static constexpr std::size_t kMaxOffloadFrame = 65535 + 18;

 private:
  void learn(Port& from, const wire::MacAddr& src, Nanos now);
  void note_duplicate(const wire::MacAddr& mac, PortId first, Port& second);
  void forget_port(PortId id);
  void age_macs();
  Nanos aging_interval() const;
  void rebuild_port_lists();
  class Forms;
  void flood(Port& from, Forms& forms);
  // The VLAN scratch buffer `which` (0: untagged, 1: tagged) of this depth.
  std::uint8_t* vlan_scratch(int which);

  EventLoop& loop_;
  LifeToken life_;
  std::string name_;
  NetworkOptions options_;
  PortId next_port_id_ = 1;
  std::map<PortId, std::unique_ptr<Port>> ports_;
  // Flat copies of ports_ for the forwarding path, rebuilt on add/remove.
  std::vector<Port*> frame_ports_;
  std::vector<Port*> mirror_ports_;
  bool guard_servers_ = false;
  std::map<std::string, std::shared_ptr<BandwidthGroup>> bandwidth_groups_;  // a port runs the network's servers (fabric/guard)
  std::unordered_map<wire::MacAddr, MacEntry> macs_;
  std::unordered_map<PortId, std::uint32_t> macs_learned_;
  std::vector<DuplicateMac> duplicate_macs_;
  std::uint64_t duplicate_mac_events_ = 0;
  Timer aging_timer_;
  PortId ingress_port_ = 0;
  int ingress_depth_ = 0;
  static constexpr std::size_t kOffloadScratch = 65536 + 64;
  // Allocated on first use per nesting level: most networks never cut.
  std::array<std::unique_ptr<std::uint8_t[]>, kMaxScratchDepth> offload_scratch_;
  int scratch_depth_ = 0;
  static constexpr std::size_t kVlanScratch = kMaxOffloadFrame + 4;
  std::unique_ptr<std::uint8_t[]> vlan_scratch_[kMaxIngressDepth][2];
};

}  // namespace vnet
