#include "control/engine.hpp"

#include <algorithm>
#include <cctype>
#include <set>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include "control/state.hpp"
#include "core/error.hpp"
#include "core/isolation.hpp"
#include "core/log.hpp"
#include "nat/dhcp.hpp"
#include "nat/gateway.hpp"
#include "nat/portfwd.hpp"
#include "nat/tcp.hpp"
#include "ports/bridge_member.hpp"
#include "ports/factory.hpp"
#include "privsep/helper.hpp"
#include "privsep/kernel_net.hpp"
#include "privsep/request.hpp"

namespace vnet {

using nlohmann::json;

void check_network_name(const std::string& name) {
  if (name.empty() || name.size() > 32)
    throw UserError("network name must be 1 to 32 characters");
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      throw UserError("network name '" + name + "' may only hold letters, digits, '-', '_' and '.'");
}

Engine::Engine(EventLoop& loop) : loop_(loop) {}
Engine::~Engine() = default;

namespace {

// "A.B.C.D/LEN" for the address `host` of the gateway's subnet.
std::string address_in(const nat::NatConfig& c, wire::Ipv4Addr host) {
  return host.to_string() + "/" + std::to_string(c.net.prefix_len);
}

// Interface names are built from the network's name and must fit IFNAMSIZ.
void check_host_name_room(const std::string& name, std::size_t most, const char* mode) {
  if (name.size() > most)
    throw UserError(std::string(mode) + " network names may have at most " + std::to_string(most) +
                    " characters: vnet names its host interfaces after them (" + privsep::kOwnedPrefix + name + "...)");
}

}  // namespace

Network& Engine::add_network(const std::string& name, const NetworkOptions& options,
                             const std::optional<nat::NatConfig>& gateway, const HostSetup& host) {
  check_network_name(name);
  if (networks_.count(name)) throw UserError("network '" + name + "' already exists");
  if (options.mtu < 68 || options.mtu > 65535) throw UserError("mtu must be between 68 and 65535");
  std::unique_ptr<KernelNatBridge> bridge;
  if (options.mode == NetworkMode::KernelNat) {
    if (!gateway || !gateway->router) throw UserError("internal: a kernel-nat network needs its services' settings");
    check_host_name_room(name, 9, "kernel-nat");  // vn-NAME-NN
    bridge = std::make_unique<KernelNatBridge>(kernel_nat_bridge(name), address_in(*gateway, *gateway->router),
                                               host.uplink);
  }
  auto net = std::make_unique<Network>(loop_, name, options);
  if (gateway || options.mode == NetworkMode::Nat) {
    nat::NatConfig config = gateway.value_or(nat::NatConfig{});
    config.mtu = options.mtu;
    net->add_port(std::make_unique<nat::NatGateway>(loop_, *net, net->next_port_id(), config));
  }
  Network& ref = *net;
  networks_[name] = std::move(net);
  try {
    add_host_side(name, options, gateway ? &*gateway : nullptr, host);
  } catch (...) {
    networks_.erase(name);
    throw;
  }
  if (bridge) kernel_bridges_[name] = std::move(bridge);
  log::info("network {} added ({})", name, to_string(options.mode));
  return ref;
}

// The ports through which a root-only mode's network meets the host.
void Engine::add_host_side(const std::string& name, const NetworkOptions& options, const nat::NatConfig* gateway,
                           const HostSetup& host) {
  switch (options.mode) {
    case NetworkMode::Bridged:
      if (!privsep::valid_ifname(host.uplink))
        throw UserError("--mode bridged needs --uplink IF: the host interface whose LAN the guests join");
      add_port(name, "uplink,ifname=" + host.uplink);
      return;
    case NetworkMode::KernelNat: {
      const std::string service = kernel_nat_service_tap(name);
      add_port(name, "tap,ifname=" + service);
      set_bridge_membership(kernel_nat_bridge(name), service, true);
      return;
    }
    case NetworkMode::Hostonly:
      if (!host.host_tap) return;
    {
      check_host_name_room(name, 12, "--host-tap");
      const wire::Ipv4Addr host_addr = wire::Ipv4Addr::from_u32(gateway->net.network().to_u32() + 1);
      if (host_addr == gateway->gateway || host_addr == gateway->dns || host_addr == gateway->dhcp_start)
        throw UserError("--host-tap on gives the host " + host_addr.to_string() +
                        ": keep --gateway, --dns and --dhcp-start off that address");
      add_port(name, "tap,ifname=" + kernel_nat_bridge(name));
      set_host_address(kernel_nat_bridge(name), address_in(*gateway, host_addr));
      return;
    }
    default:
      return;
  }
}

void Engine::del_network(const std::string& name) {
  network(name);
  networks_.erase(name);
  kernel_bridges_.erase(name);
  log::info("network {} removed", name);
}

void Engine::remove_networks() {
  networks_.clear();
  kernel_bridges_.clear();
}

Network& Engine::network(const std::string& name) {
  auto it = networks_.find(name);
  if (it == networks_.end()) throw UserError("no network named '" + name + "' (see `vnet net list`)");
  return *it->second;
}

nat::PortForwarder& Engine::forwarder(const std::string& net) {
  for (const auto& [id, p] : network(net).ports())
    if (auto* gw = dynamic_cast<nat::NatGateway*>(p.get())) return gw->portfwd();
  throw UserError("network " + net + " is not a nat network");
}

std::string Engine::pf_add(const std::string& net, const std::string& rule) {
  const NetworkMode mode = network(net).mode();
  if (mode != NetworkMode::Nat && mode != NetworkMode::Hostonly)
    throw UserError("network " + net + " is " + to_string(mode) + ": its guests are kept from the host, so it takes "
                    "no port forwards (use --mode hostonly or nat)");
  return forwarder(net).add(rule);
}

void Engine::pf_del(const std::string& net, const std::string& name) { forwarder(net).remove(name); }

nlohmann::json Engine::pf_list(const std::string& net) { return forwarder(net).list(); }

void Engine::close_guest_flows() {
  for (const auto& [name, net] : networks_)
    for (const auto& [id, p] : net->ports())
      if (auto* gw = dynamic_cast<nat::NatGateway*>(p.get())) gw->tcp().reset_all();
}

namespace {

// A unix listener path already served by this engine. Checked before the
// port's own "is it in use?" probe, which would otherwise connect to our own
// listener and show up there as a short-lived port.
std::optional<std::string> own_listener(const std::map<std::string, std::unique_ptr<Network>>& networks,
                                        const PortSpec& spec) {
  if (spec.kind != "stream" || spec.get("addr.type") != "unix" || spec.get("server") != "on") return std::nullopt;
  const std::string peer = "unix:" + spec.get("addr.path");
  for (const auto& [name, net] : networks)
    for (const auto& [id, port] : net->ports())
      if (port->kind() == "stream-listen" && port->peer() == peer)
        return "network '" + name + "' port " + std::to_string(id);
  return std::nullopt;
}

}  // namespace

PortId Engine::add_port(const std::string& net_name, const std::string& spec_text) {
  Network& net = network(net_name);
  PortSpec spec = parse_port_spec(spec_text);
  if (auto user = own_listener(networks_, spec))
    throw UserError("unix socket " + spec.get("addr.path") + " is already in use by " + *user);
  auto port = make_port(loop_, net, spec, socket_access_);
  PortId id = port->id();
  log::info("{}: port {} added: {}", net_name, id, port->spec());
  net.add_port(std::move(port));
  return id;
}

void Engine::del_port(const std::string& net_name, PortId id) {
  Network& net = network(net_name);
  if (dynamic_cast<nat::NatGateway*>(&port(net_name, id)))
    throw UserError("port " + std::to_string(id) + " is the NAT gateway of network '" + net_name +
                    "': it cannot be removed (delete the network with `vnet net del " + net_name + "`)");
  net.remove_port(id);
  log::info("{}: port {} removed", net_name, id);
}

Port& Engine::port(const std::string& net_name, PortId id) {
  Port* p = network(net_name).find_port(id);
  if (!p)
    throw UserError("network '" + net_name + "' has no port " + std::to_string(id) + " (see `vnet status " +
                    net_name + "`)");
  return *p;
}

void Engine::set_port(const std::string& net_name, PortId id, const PortSettings& settings) {
  Port& p = port(net_name, id);
  std::shared_ptr<BandwidthGroup> group;
  if (settings.bandwidth_group && !settings.bandwidth_group->empty()) {
    const std::string& name = *settings.bandwidth_group;
    group = network(net_name).find_bandwidth_group(name);
    if (!group)
      throw UserError("no bandwidth group '" + name + "' on " + net_name + " (add it first: vnet bwgroup add " +
                      net_name + " " + name + " --rate 10mbit)");
  }
  // A listener's settings are its guests' too: the connections it accepted
  // so far take them now, later ones when they connect (inherit_settings).
  std::vector<Port*> targets = {&p};
  for (const auto& [child_id, child] : network(net_name).ports())
    if (child->parent() == id) targets.push_back(child.get());
  for (Port* t : targets) {
    if (settings.link_up) t->set_link(*settings.link_up);
    if (settings.impairment) t->set_impairment(settings.direction, *settings.impairment);
    if (settings.bandwidth_group) t->set_bandwidth_group(group);
  }
  const std::string also = targets.size() > 1 ? fmt::format(" (and its {} connections)", targets.size() - 1) : "";
  if (settings.link_up) log::info("{}: port {} link {}{}", net_name, id, *settings.link_up ? "up" : "down", also);
  if (settings.impairment)
    log::info("{}: port {} impairments: {}{}", net_name, id,
              settings.impairment->active() ? settings.impairment->describe() : "none", also);
  if (settings.bandwidth_group)
    log::info("{}: port {} bandwidth group: {}{}", net_name, id,
              settings.bandwidth_group->empty() ? "none" : *settings.bandwidth_group, also);
}

void Engine::bwgroup_add(const std::string& net_name, const std::string& name, std::uint64_t rate_bps,
                         std::uint64_t burst) {
  if (name.empty() || name.size() > 64 ||
      !std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; }))
    throw UserError("bandwidth group name '" + name + "': use 1 to 64 letters, digits, '-' or '_'");
  if (rate_bps == 0) throw UserError("--rate: a bandwidth group needs a rate above 0, e.g. 10mbit");
  network(net_name).set_bandwidth_group(name, rate_bps, burst);
  log::info("{}: bandwidth group {}: {} bit/s", net_name, name, rate_bps);
}

void Engine::bwgroup_del(const std::string& net_name, const std::string& name) {
  Network& net = network(net_name);
  auto group = net.find_bandwidth_group(name);
  if (!group) throw UserError("no bandwidth group '" + name + "' on " + net_name);
  std::string members;
  for (const auto& [id, p] : net.ports())
    if (p->bandwidth_group() == group) members += (members.empty() ? "" : ", ") + std::to_string(id);
  if (!members.empty())
    throw UserError("bandwidth group '" + name + "' still holds port(s) " + members +
                    " (move them out first: vnet port set " + net_name + " ID --bwgroup none)");
  net.remove_bandwidth_group(name);
}

namespace {

// 52:56:NN:CC:CC:CC: 0x52 has the locally administered bit set and the group
// bit clear; 52:56 differs from QEMU's 52:54:00 default; NN is from the
// network name so that guests of two networks bridged later still differ.
wire::MacAddr attach_mac(const std::string& net, std::uint32_t counter) {
  std::uint8_t name_hash = 0x5a;
  for (unsigned char c : net) name_hash = static_cast<std::uint8_t>(name_hash * 31 + c);
  return {{0x52, 0x56, name_hash, static_cast<std::uint8_t>(counter >> 16), static_cast<std::uint8_t>(counter >> 8),
           static_cast<std::uint8_t>(counter)}};
}

json listener_json(const Port& p) {
  const std::string peer = p.peer();
  if (peer.rfind("unix:", 0) == 0) return {{"type", "unix"}, {"path", peer.substr(5)}, {"port", p.id()}};
  const auto colon = peer.rfind(':');
  std::string host = peer.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return {{"type", "inet"}, {"host", host}, {"port_number", peer.substr(colon + 1)}, {"port", p.id()}};
}

}  // namespace

// kernel-nat: a fresh vn-NAME-N TAP in the bridge, for QEMU's -netdev tap.
json Engine::attach_member(Network& net) {
  std::set<std::string> taken;
  for (const auto& [id, p] : net.ports())
    if (p->kind() == "member") taken.insert(p->peer().substr(p->peer().find('/') + 1));
  for (int n = 0; n < 100; ++n) {
    const std::string tap = kernel_nat_bridge(net.name()) + "-" + std::to_string(n);
    if (taken.count(tap)) continue;
    const PortId id = add_port(net.name(), "member,ifname=" + tap);
    // The MAC goes with the TAP's number: after a restart that brought the
    // saved TAPs back, the next attach still hands out one no guest has.
    return {{"tap", tap}, {"port", id}, {"mac", attach_mac(net.name(), static_cast<std::uint32_t>(n) + 1).to_string()}};
  }
  throw UserError("network '" + net.name() + "' has no free vn-... TAP name left (100 members)");
}

json Engine::attach(const std::string& net_name) {
  Network& net = network(net_name);
  if (net.mode() == NetworkMode::KernelNat) {
    json reply = attach_member(net);
    reply["net"] = net_name;
    return reply;
  }
  json listener, listeners = json::array();
  for (const auto& [id, p] : net.ports()) {
    if (p->kind() != "stream-listen") continue;
    json candidate = listener_json(*p);
    listeners.push_back(candidate);
    // A unix socket first: it needs no port number and only its owner can use it.
    if (listener.is_null() || (candidate["type"] == "unix" && listener["type"] != "unix")) listener = candidate;
  }
  if (listener.is_null())
    throw UserError("network '" + net_name + "' has no listener for guests: add one with `vnet port add " + net_name +
                    " stream,server=on,addr.type=unix,addr.path=PATH`");
  const wire::MacAddr mac = fresh_attach_mac(net);
  return {{"net", net_name}, {"mac", mac.to_string()}, {"listener", listener}, {"listeners", listeners}};
}

// The next MAC of the network's series that no guest uses: none seen on the
// network (set by hand) and none holding a lease, which after a restart is
// how vnet knows the guests it handed MACs to before (the counter starts
// again, and a guest whose QEMU is reconnecting has not sent a frame yet).
wire::MacAddr Engine::fresh_attach_mac(Network& net) {
  nat::DhcpServer* dhcp = nullptr;
  for (const auto& [id, p] : net.ports())
    if (auto* gw = dynamic_cast<nat::NatGateway*>(p.get())) dhcp = &gw->dhcp();
  std::uint32_t& counter = attach_counters_[net.name()];
  for (std::uint32_t tries = 0; tries < 0x1000000; ++tries) {
    const wire::MacAddr mac = attach_mac(net.name(), ++counter & 0xffffff);
    if (net.mac_table().count(mac) || (dhcp && dhcp->lease_of(mac))) continue;
    log::info("{}: attach: MAC {} handed out", net.name(), mac.to_string());
    return mac;
  }
  throw UserError("network '" + net.name() + "': no free MAC left to hand out");
}

namespace {

json counters_json(const PortCounters& c) {
  return {{"rx_frames", c.rx_frames},
          {"rx_bytes", c.rx_bytes},
          {"tx_frames", c.tx_frames},
          {"tx_bytes", c.tx_bytes},
          {"drop_overflow", c.drop_overflow},
          {"drop_oversize", c.drop_oversize},
          {"drop_runt", c.drop_runt},
          {"drop_malformed", c.drop_malformed},
          {"drop_down", c.drop_down},
          {"drop_vlan", c.drop_vlan},
          {"drop_guard", c.drop_guard},
          {"drop_tunnel", c.drop_tunnel},
          {"drop_loop", c.drop_loop},
          {"mac_limit", c.mac_limit},
          {"mac_duplicate", c.mac_duplicate},
          {"imp_lost", c.imp_lost},
          {"imp_duplicated", c.imp_duplicated},
          {"imp_reordered", c.imp_reordered},
          {"imp_delayed", c.imp_delayed},
          {"imp_shaped", c.imp_shaped},
          {"imp_queue_drop", c.imp_queue_drop}};
}

json port_json(const Port& p) {
  json j = {{"id", p.id()},         {"kind", p.kind()},   {"spec", p.spec()},
            {"peer", p.peer()},     {"state", p.state()}, {"link", p.link_up() ? "up" : "down"},
            {"vlan", p.vlan()},     {"trunk", p.vlan_config().trunk_text()},     {"queued", p.queued_frames()},
            {"counters", counters_json(p.counters())}};
  if (p.parent()) j["parent"] = p.parent();
  json imp = json::object();
  // A stage may exist for the bandwidth group alone, with no settings of its own.
  if (auto* in = p.impairment(Direction::In); in && in->active()) imp["in"] = in->describe();
  if (auto* out = p.impairment(Direction::Out); out && out->active()) imp["out"] = out->describe();
  j["impairments"] = imp;
  if (const auto& g = p.bandwidth_group()) j["bwgroup"] = g->name;
  return j;
}

json network_json(const Network& net) {
  json ports = json::array();
  json nat_status;
  for (const auto& [id, p] : net.ports()) {
    ports.push_back(port_json(*p));
    if (auto* gw = dynamic_cast<const nat::NatGateway*>(p.get())) nat_status = gw->status();
  }
  json macs = json::array();
  const Nanos now = monotonic_now();
  std::size_t listed = 0;
  for (const auto& [mac, entry] : net.mac_table()) {
    if (listed++ == kStatusListMax) break;
    macs.push_back({{"mac", mac.to_string()}, {"port", entry.port},
                    {"age_s", static_cast<double>(now - entry.last_seen) / kSeconds}});
  }
  json duplicates = json::array();
  for (const auto& d : net.duplicate_macs())
    duplicates.push_back({{"mac", d.mac.to_string()}, {"ports", {d.first_port, d.second_port}}, {"times", d.times}});
  json groups = json::array();
  for (const auto& [name, g] : net.bandwidth_groups()) {
    json members = json::array();
    for (const auto& [id, p] : net.ports())
      if (p->bandwidth_group() == g) members.push_back(id);
    groups.push_back({{"name", name}, {"rate_bps", g->rate_bps}, {"burst", g->burst_bytes}, {"ports", members}});
  }
  const auto& o = net.options();
  return {{"name", net.name()},
          {"mode", to_string(o.mode)},
          {"mtu", o.mtu},
          {"mac_aging_s", static_cast<double>(o.mac_aging) / kSeconds},
          {"mac_limit", o.macs_per_port},
          {"ports", ports},
          {"macs", macs},
          {"macs_truncated", net.mac_table().size() - macs.size()},
          {"duplicate_macs", duplicates},
          {"duplicate_mac_events", net.duplicate_mac_events()},
          {"bwgroups", groups},
          {"nat", nat_status}};
}

// Who the engine runs as (see privsep/sandbox.hpp), from /proc/self/status.
json process_json() {
  const auto s = isolation::read_process_security();
  const char* seccomp = s.seccomp == 2 ? "filter" : s.seccomp == 1 ? "strict" : s.seccomp == 0 ? "off" : "unknown";
  return {{"pid", ::getpid()},
          {"uid", s.uid},
          {"gid", s.gid},
          {"cap_eff", s.cap_eff},
          {"no_new_privs", s.no_new_privs},
          {"seccomp", seccomp},
          {"privileged_helper", privsep::broker() != nullptr}};
}

}  // namespace

json Engine::status(const std::string& only_net) const {
  json nets = json::array();
  for (const auto& [name, net] : networks_) {
    if (!only_net.empty() && name != only_net) continue;
    nets.push_back(network_json(*net));
  }
  if (!only_net.empty() && nets.empty())
    throw UserError("no network named '" + only_net + "' (see `vnet net list`)");
  json out = {{"networks", nets}, {"engine", process_json()}};
  out["host"] = {{"nofile_limit", host_.nofile_limit},
                 {"control_refused", host_.control_refused},
                 {"control_over_cap", host_.control_over_cap}};
  if (persistence_) out["state"] = persistence_->status();
  return out;
}

}  // namespace vnet
