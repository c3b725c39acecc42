// The engine's model: named networks and their ports, and every operation
// the control socket and the config file can ask for. One place, so that
// "anything the CLI can do at runtime the file can declare" holds by
// construction: both go through these functions.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/event_loop.hpp"
#include "fabric/network.hpp"
#include "nat/config.hpp"
#include "ports/bridge_member.hpp"
#include "ports/factory.hpp"

namespace vnet {

namespace nat {
class PortForwarder;
}
class Persistence;

struct PortSettings {
  std::optional<bool> link_up;
  Direction direction = Direction::Both;
  std::optional<ImpairmentParams> impairment;  // all-zero params clear them
  std::optional<std::string> bandwidth_group;  // join it; "" leaves the port's group
};

// What a root-only mode sets up on the host beside the network (docs/modes.md).
struct HostSetup {
  std::string uplink;     // bridged: the LAN's interface; kernel-nat: masquerade out of it only
  bool host_tap = false;  // hostonly: a host interface vn-NAME holding the subnet's .1
};

// Host-side facts and counters shown under "host" in `vnet status --json`.
struct HostStatus {
  std::uint64_t nofile_limit = 0;      // RLIMIT_NOFILE after raising it to the hard limit
  std::uint64_t control_refused = 0;   // control connections from another user
  std::uint64_t control_over_cap = 0;  // control clients dropped for not reading their replies
};

// Most entries one status lists per table (MACs, ARP, flows...): past it, the
// list stops and "<list>_truncated" says how many were left out, so one
// `vnet status` of a huge table cannot stall the event loop.
constexpr std::size_t kStatusListMax = 1000;

class Engine {
 public:
  explicit Engine(EventLoop& loop);
  ~Engine();

  EventLoop& loop() { return loop_; }
  HostStatus& host() { return host_; }
  // Who may connect to unix sockets made for guests (`vnet up --group`).
  void set_socket_access(const SocketAccess& access) { socket_access_ = access; }
  // Saves definitions as requests change them (control/state.hpp); null: nothing is saved.
  void set_persistence(Persistence* persistence) { persistence_ = persistence; }
  Persistence* persistence() const { return persistence_; }

  // With `gateway` (always for mode nat), a NAT gateway with that config is
  // attached as the network's port 1 (other modes: DHCP with a policy that
  // keeps guests in, see nat_config_from()).
  Network& add_network(const std::string& name, const NetworkOptions& options,
                       const std::optional<nat::NatConfig>& gateway = std::nullopt, const HostSetup& host = {});
  void del_network(const std::string& name);
  // All of them, and what they set up on the host (at shutdown).
  void remove_networks();
  Network& network(const std::string& name);
  const std::map<std::string, std::unique_ptr<Network>>& networks() const { return networks_; }

  PortId add_port(const std::string& net, const std::string& spec_text);
  void del_port(const std::string& net, PortId id);
  void set_port(const std::string& net, PortId id, const PortSettings& settings);
  // Bandwidth groups: ports of a network that share one rate limit per
  // direction (VirtualBox's bandwidthctl). Adding an existing name changes
  // its limit; a group still holding ports cannot be deleted.
  void bwgroup_add(const std::string& net, const std::string& name, std::uint64_t rate_bps, std::uint64_t burst);
  void bwgroup_del(const std::string& net, const std::string& name);
  Port& port(const std::string& net, PortId id);

  // Port forwards of a NAT network (throw "network X is not a nat network"
  // for others). pf_add returns the rule's name.
  std::string pf_add(const std::string& net, const std::string& rule);
  void pf_del(const std::string& net, const std::string& name);
  nlohmann::json pf_list(const std::string& net);

  // Shutdown: resets the guests' TCP connections through every NAT network.
  void close_guest_flows();

  // What one more guest needs to join `net`: a MAC of its own (locally
  // administered, never handed out before by this engine for this network,
  // not in use on it) and the listener it connects to. Throws if the network
  // has no listener a guest can connect to.
  nlohmann::json attach(const std::string& net);

  // Snapshot for `vnet status --json` (and the human view built from it).
  nlohmann::json status(const std::string& only_net = "") const;

 private:
  nat::PortForwarder& forwarder(const std::string& net);
  void add_host_side(const std::string& name, const NetworkOptions& options, const nat::NatConfig* gateway,
                     const HostSetup& host);
  nlohmann::json attach_member(Network& net);
  wire::MacAddr fresh_attach_mac(Network& net);

  EventLoop& loop_;
  HostStatus host_;
  SocketAccess socket_access_;
  Persistence* persistence_ = nullptr;
  // Host bridges of kernel-nat networks; declared before networks_ so that
  // a network's member ports leave the bridge before it goes.
  std::map<std::string, std::unique_ptr<KernelNatBridge>> kernel_bridges_;
  std::map<std::string, std::unique_ptr<Network>> networks_;
  // MACs handed out by attach(), per network name (kept across net del/add so
  // a re-created network does not hand out a MAC a running guest still has).
  std::map<std::string, std::uint32_t> attach_counters_;
};

// Validates a network name: what users type and what file names may hold.
void check_network_name(const std::string& name);

}  // namespace vnet
