#include "control/request.hpp"

#include <algorithm>
#include <iterator>
#include <string_view>
#include <vector>

#include "control/metrics.hpp"
#include "control/option_schema.hpp"
#include "control/state.hpp"
#include "core/error.hpp"
#include "privsep/request.hpp"

namespace vnet {

using nlohmann::json;

namespace {

std::string string_field(const json& req, const char* key) {
  auto it = req.find(key);
  if (it == req.end() || !it->is_string()) throw UserError(std::string("request needs a string field '") + key + "'");
  return it->get<std::string>();
}

std::optional<std::string> optional_string(const json& req, const char* key) {
  auto it = req.find(key);
  if (it == req.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) throw UserError(std::string("field '") + key + "' must be a string");
  return it->get<std::string>();
}

PortId port_id_field(const json& req) {
  auto it = req.find("port");
  if (it == req.end() || !it->is_number_unsigned() || it->get<std::uint64_t>() == 0 ||
      it->get<std::uint64_t>() > 0xffffffffu)
    throw UserError("request needs a positive integer field 'port'");
  return static_cast<PortId>(it->get<std::uint64_t>());
}

template <typename T, typename Parse>
void parse_into(const json& req, const char* key, T& out, Parse parse, const char* example) {
  auto text = optional_string(req, key);
  if (!text) return;
  auto v = parse(*text);
  if (!v) throw UserError(std::string("--") + key + " " + *text + ": expected e.g. " + example);
  out = static_cast<T>(*v);
}

json ok(json extra = json::object()) {
  extra["ok"] = true;
  return extra;
}

// What each command takes besides "cmd". Any other key is an error, so that a
// typo ("subnett") is reported instead of silently leaving a default in place.
// A new request field must be added here too.
}  // namespace

const std::vector<std::string_view>& port_setting_keys() {
  static const std::vector<std::string_view> keys = schema_keys(port_setting_schema());
  return keys;
}

namespace {

// The network options (control/option_schema), and what only requests
// carry: the name, "transient" (not saved) and "resolv_conf" (tests).
std::vector<std::string_view> net_add_keys() {
  std::vector<std::string_view> keys = {"name", "transient", "resolv_conf"};
  for (auto k : schema_keys(network_option_schema())) keys.push_back(k);
  return keys;
}

struct CommandKeys {
  std::string_view cmd;
  std::vector<std::string_view> keys;
  bool impairments = false;
};
const std::vector<CommandKeys>& command_keys() {
  static const std::vector<CommandKeys> table = {
      {"status", {"net"}},
      {"net_list", {}},
      {"net_add", net_add_keys()},
      {"net_del", {"name"}},
      {"port_add", {"net", "spec"}, true},
      {"port_del", {"net", "port"}},
      {"port_set", {"net", "port"}, true},
      {"pf_add", {"net", "rule"}},
      {"pf_del", {"net", "name"}},
      {"pf_list", {"net"}},
      {"bwgroup_add", {"net", "name", "rate", "burst"}},
      {"bwgroup_del", {"net", "name"}},
      {"shutdown", {}},
      {"capture", {"net"}},
      {"attach", {"net"}},
      {"metrics", {}},
  };
  return table;
}

void check_keys(const std::string& cmd, const json& req) {
  const auto& table = command_keys();
  auto known = std::find_if(table.begin(), table.end(), [&](const CommandKeys& c) { return c.cmd == cmd; });
  if (known == table.end()) throw UserError("unknown command '" + cmd + "'");
  for (const auto& item : req.items()) {
    const std::string& key = item.key();  // not a structured binding: lambdas below capture it
    if (key == "cmd") continue;
    auto in = [&key](auto& keys) { return std::find(std::begin(keys), std::end(keys), key) != std::end(keys); };
    if (in(known->keys) || (known->impairments && in(port_setting_keys()))) continue;
    std::string allowed;
    for (auto k : known->keys) allowed += (allowed.empty() ? "" : ", ") + std::string(k);
    if (known->impairments) allowed += ", and the impairment settings";
    throw UserError("unknown field '" + key + "' in a " + cmd + " request (allowed: " +
                    (allowed.empty() ? std::string("none") : allowed) + ")");
  }
}

json dispatch(Engine& engine, const json& req) {
  const std::string cmd = string_field(req, "cmd");
  check_keys(cmd, req);
  if (cmd == "status") return ok(engine.status(optional_string(req, "net").value_or("")));
  if (cmd == "net_list") {
    json nets = json::array();
    for (const auto& [name, net] : engine.networks())
      nets.push_back({{"name", name}, {"mode", to_string(net->mode())}, {"ports", net->ports().size()}});
    return ok({{"networks", nets}});
  }
  if (cmd == "net_add") {
    if (auto it = req.find("transient"); it != req.end() && !it->is_boolean())
      throw UserError("field 'transient' must be true or false");
    NetworkOptions options = network_options_from(req);
    engine.add_network(string_field(req, "name"), options, gateway_config_from(options.mode, req),
                       host_setup_from(options.mode, req));
    return ok();
  }
  if (cmd == "net_del") {
    engine.del_network(string_field(req, "name"));
    return ok();
  }
  if (cmd == "port_add") {
    const std::string net = string_field(req, "net");
    PortSettings settings = port_settings_from(req);  // parse before the port exists: a typo leaves nothing behind
    PortId id = engine.add_port(net, string_field(req, "spec"));
    if (settings.link_up || settings.impairment || settings.bandwidth_group) {
      try {
        engine.set_port(net, id, settings);
      } catch (...) {
        engine.del_port(net, id);
        throw;
      }
    }
    return ok({{"port", id}});
  }
  if (cmd == "port_del") {
    engine.del_port(string_field(req, "net"), port_id_field(req));
    return ok();
  }
  if (cmd == "port_set") {
    engine.set_port(string_field(req, "net"), port_id_field(req), port_settings_from(req));
    return ok();
  }
  if (cmd == "pf_add") return ok({{"name", engine.pf_add(string_field(req, "net"), string_field(req, "rule"))}});
  if (cmd == "pf_del") {
    engine.pf_del(string_field(req, "net"), string_field(req, "name"));
    return ok();
  }
  if (cmd == "pf_list") return ok({{"forwards", engine.pf_list(string_field(req, "net"))}});
  if (cmd == "bwgroup_add") {
    std::uint64_t rate = 0, burst = 0;
    parse_into(req, "rate", rate, parse_rate, "10mbit");
    parse_into(req, "burst", burst, parse_size, "32k");
    engine.bwgroup_add(string_field(req, "net"), string_field(req, "name"), rate, burst);
    return ok();
  }
  if (cmd == "bwgroup_del") {
    engine.bwgroup_del(string_field(req, "net"), string_field(req, "name"));
    return ok();
  }
  if (cmd == "attach") return ok(engine.attach(string_field(req, "net")));
  if (cmd == "shutdown") return ok();
  if (cmd == "metrics") return ok({{"text", render_engine_metrics(engine)}});
  if (cmd == "capture") {
    engine.network(string_field(req, "net"));
    return ok();
  }
  throw UserError("unknown command '" + cmd + "'");
}

}  // namespace

NetworkOptions network_options_from(const json& req) {
  NetworkOptions o;
  auto mode = optional_string(req, "mode").value_or("switch");
  if (mode == "switch") o.mode = NetworkMode::Switch;
  else if (mode == "hub") o.mode = NetworkMode::Hub;
  else if (mode == "nat") o.mode = NetworkMode::Nat;
  else if (mode == "internal") o.mode = NetworkMode::Internal;
  else if (mode == "hostonly") o.mode = NetworkMode::Hostonly;
  else if (mode == "bridged") o.mode = NetworkMode::Bridged;
  else if (mode == "kernel-nat") o.mode = NetworkMode::KernelNat;
  else throw UserError("--mode " + mode + ": expected switch, hub, nat, internal, hostonly, bridged or kernel-nat");
  if (auto it = req.find("mtu"); it != req.end()) {
    if (!it->is_number_unsigned() || it->get<std::uint64_t>() > 65535) throw UserError("--mtu: expected 68..65535");
    o.mtu = it->get<std::uint32_t>();
  } else if (o.mode == NetworkMode::Nat || o.mode == NetworkMode::Hostonly || o.mode == NetworkMode::KernelNat ||
             o.mode == NetworkMode::Bridged || optional_string(req, "dhcp") == "on") {
    o.mtu = 1500;  // a DHCP network's MTU is what DHCP tells its guests: Ethernet's, unless asked
  }
  if (auto it = req.find("mac_limit"); it != req.end()) {
    if (!it->is_number_unsigned() || it->get<std::uint64_t>() > 1000000)
      throw UserError("--mac-limit: expected a count up to 1000000");
    o.macs_per_port = it->get<std::uint32_t>();
  }
  parse_into(req, "mac_aging", o.mac_aging, parse_duration, "300s");
  if (o.mac_aging <= 0) throw UserError("--mac-aging must be more than 0");
  return o;
}

namespace {

wire::Ipv4Addr ipv4_field(const json& req, const char* key, wire::Ipv4Addr fallback) {
  auto text = optional_string(req, key);
  if (!text) return fallback;
  auto a = wire::Ipv4Addr::parse(*text);
  if (!a) throw UserError(std::string("--") + key + " " + *text + ": expected an IPv4 address");
  return *a;
}

wire::Ipv6Addr ipv6_field(const json& req, const char* key, wire::Ipv6Addr fallback) {
  auto text = optional_string(req, key);
  if (!text) return fallback;
  auto a = wire::Ipv6Addr::parse(*text);
  if (!a) throw UserError(std::string("--") + key + " " + *text + ": expected an IPv6 address such as fec0::2");
  return *a;
}

bool on_off_field(const json& req, const char* key, bool fallback) {
  auto text = optional_string(req, key);
  if (!text) return fallback;
  if (*text == "on") return true;
  if (*text == "off") return false;
  throw UserError(std::string("--") + key + " " + *text + ": expected on or off");
}

// --ipv6, --net6, --gateway6, --dns6: QEMU's layout inside any prefix
// (::2 gateway, ::3 DNS), as for IPv4.
void ipv6_settings_from(const json& req, nat::NatConfig& c) {
  c.ipv6 = on_off_field(req, "ipv6", c.ipv6);
  c.ra = on_off_field(req, "ra", c.ra);
  if (auto text = optional_string(req, "net6")) {
    auto cidr = wire::Ipv6Cidr::parse(*text);
    if (!cidr || cidr->prefix_len < 8 || cidr->prefix_len > 64 || cidr->addr.is_multicast() ||
        cidr->addr.is_link_local() || cidr->addr.is_loopback() || cidr->addr.is_v4_mapped() ||
        cidr->network().is_unspecified())
      throw UserError("--net6 " + *text +
                      ": expected an IPv6 prefix such as fec0::/64 (length 8 to 64; not link-local or multicast)");
    c.net6 = wire::Ipv6Cidr{cidr->network(), cidr->prefix_len};
    c.gateway6 = c.net6.addr;
    c.gateway6.octets[15] = 2;
    c.dns6 = c.net6.addr;
    c.dns6.octets[15] = 3;
  }
  c.gateway6 = ipv6_field(req, "gateway6", c.gateway6);
  c.dns6 = ipv6_field(req, "dns6", c.dns6);
  for (auto [key, addr] : {std::pair{"gateway6", c.gateway6}, {"dns6", c.dns6}}) {
    if (!c.net6.contains(addr) || addr == c.net6.network())
      throw UserError(std::string("--") + key + " " + addr.to_string() + " is not a host address of " +
                      c.net6.to_string());
  }
  if (c.gateway6 == c.dns6) throw UserError("--gateway6 and --dns6 must differ");
  if (auto mode = optional_string(req, "dhcp6")) {
    if (*mode != "on" && *mode != "off" && *mode != "managed")
      throw UserError("--dhcp6 " + *mode + ": expected on, off or managed");
    c.dhcp6 = *mode != "off";
    c.dhcp6_managed = *mode == "managed";
  }
}

}  // namespace

namespace {

// The flow caps a hostile guest runs into (nat/flow), raised for a guest
// that legitimately holds many connections. Beyond the engine's fd limit
// new TCP flows fail at socket() instead, also counted.
void flow_caps_from(const json& req, nat::NatConfig& c) {
  constexpr std::int64_t kMaxCap = 1000000;
  auto cap = [&](const char* key, const char* flag, std::uint32_t& into) {
    auto it = req.find(key);
    if (it == req.end()) return false;
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1 || it->get<std::int64_t>() > kMaxCap)
      throw UserError(std::string(flag) + ": expected a count from 1 to 1000000");
    into = it->get<std::uint32_t>();
    return true;
  };
  const bool network = cap("max_flows", "--max-flows", c.max_flows);
  const bool guest = cap("max_flows_per_guest", "--max-flows-per-guest", c.max_flows_per_guest);
  if (c.max_flows_per_guest <= c.max_flows) return;
  if (guest && network)
    throw UserError("--max-flows-per-guest " + std::to_string(c.max_flows_per_guest) + " is more than --max-flows " +
                    std::to_string(c.max_flows));
  if (guest) c.max_flows = c.max_flows_per_guest;  // room in the network for the one guest's flows
  else c.max_flows_per_guest = c.max_flows;        // a smaller network bounds each guest too
}

}  // namespace

nat::NatConfig nat_config_from(const json& req) {
  nat::NatConfig c;
  if (auto text = optional_string(req, "subnet")) {
    auto cidr = wire::Ipv4Cidr::parse(*text);
    if (!cidr || cidr->prefix_len < 8 || cidr->prefix_len > 30)
      throw UserError("--net " + *text + ": expected an IPv4 network such as 10.0.2.0/24 (prefix 8 to 30)");
    c.net = wire::Ipv4Cidr{cidr->network(), cidr->prefix_len};
    // QEMU's layout inside any network: .2 gateway, .3 DNS, .15 first lease.
    const std::uint32_t base = c.net.addr.to_u32();
    c.gateway = wire::Ipv4Addr::from_u32(base + 2);
    c.dns = wire::Ipv4Addr::from_u32(base + 3);
    c.dhcp_start = wire::Ipv4Addr::from_u32(base + 15);
  }
  c.gateway = ipv4_field(req, "gateway", c.gateway);
  c.dns = ipv4_field(req, "dns", c.dns);
  c.dhcp_start = ipv4_field(req, "dhcp_start", c.dhcp_start);
  for (auto [key, addr] : {std::pair{"gateway", c.gateway}, {"dns", c.dns}, {"dhcp_start", c.dhcp_start}}) {
    if (!c.net.contains(addr) || addr == c.net.network() || addr == c.net.broadcast())
      throw UserError(std::string("--") + key + " " + addr.to_string() + " is not a host address of " +
                      c.net.to_string());
  }
  if (c.gateway == c.dns) throw UserError("--gateway and --dns must differ");
  c.dhcp = on_off_field(req, "dhcp", c.dhcp);
  ipv6_settings_from(req, c);
  c.host_loopback = on_off_field(req, "host_loopback", c.host_loopback);
  c.restrict = on_off_field(req, "restrict", c.restrict);
  if (auto it = req.find("dns_upstream"); it != req.end()) {
    if (!it->is_array()) throw UserError("dns_upstream must be a list of ADDR[:PORT]");
    for (const auto& u : *it) {
      if (!u.is_string()) throw UserError("dns_upstream must be a list of ADDR[:PORT]");
      c.dns_upstream.push_back(u.get<std::string>());
    }
  }
  if (auto it = req.find("dhcp_reserve"); it != req.end()) {
    if (!it->is_array()) throw UserError("dhcp_reserve must be a list of MAC=ADDRESS");
    for (const auto& r : *it) {
      const std::string text = r.is_string() ? r.get<std::string>() : "";
      const auto eq = text.find('=');
      auto mac = wire::MacAddr::parse(text.substr(0, eq == std::string::npos ? text.size() : eq));
      auto addr = eq == std::string::npos ? std::nullopt : wire::Ipv4Addr::parse(text.substr(eq + 1));
      if (!mac || !addr)
        throw UserError("--dhcp-reserve " + text + ": expected MAC=ADDRESS, e.g. 52:54:00:12:34:56=10.0.2.50");
      if (!c.net.contains(*addr) || *addr == c.gateway || *addr == c.dns)
        throw UserError("--dhcp-reserve " + text + ": " + addr->to_string() + " is not a guest address of " +
                        c.net.to_string());
      c.reservations.emplace_back(*mac, *addr);
    }
  }
  flow_caps_from(req, c);
  c.tftp_dir = optional_string(req, "tftp").value_or("");
  c.bootfile = optional_string(req, "bootfile").value_or("");
  c.domain = optional_string(req, "domain").value_or("");
  if (auto text = optional_string(req, "resolv_conf")) c.resolv_conf = *text;
  return c;
}

namespace {

// kernel-nat: the kernel bridge holds the guests' router address (--gateway,
// default .1) and does the NAT; vnet's services keep .2 (DHCP server) and
// .3 (DNS forwarder) on the same bridge, through its service TAP.
nat::NatConfig kernel_nat_services_from(const json& req) {
  json services = req;
  services.erase("gateway");
  nat::NatConfig c = nat_config_from(services);
  c.router = ipv4_field(req, "gateway", wire::Ipv4Addr::from_u32(c.net.network().to_u32() + 1));
  if (!c.net.contains(*c.router) || *c.router == c.net.network() || *c.router == c.net.broadcast() ||
      *c.router == c.gateway || *c.router == c.dns || *c.router == c.dhcp_start)
    throw UserError("--gateway " + c.router->to_string() + ": expected a host address of " + c.net.to_string() +
                    " other than vnet's DHCP (.2), DNS (.3) and first lease addresses");
  c.outside = false;  // the kernel translates; vnet's gateway answers only for its own services
  c.host_loopback = false;
  c.ipv6 = false;
  // Every guest's DHCP comes in through the one service TAP.
  c.max_leases_per_port = c.max_leases;
  return c;
}

}  // namespace

std::optional<nat::NatConfig> gateway_config_from(NetworkMode mode, const json& req) {
  if (mode == NetworkMode::Nat) return nat_config_from(req);
  if (mode == NetworkMode::KernelNat) return kernel_nat_services_from(req);
  if (mode == NetworkMode::Bridged) {
    for (const char* key : {"dhcp", "subnet", "gateway", "dhcp_start", "dhcp_reserve", "dns", "ipv6", "ra", "dhcp6"})
      if (req.contains(key))
        throw UserError(std::string("--") + (std::string(key) == "subnet" ? "net" : key) +
                        ": a bridged network's guests take their addresses from the LAN behind --uplink");
    return std::nullopt;
  }
  const bool dhcp = optional_string(req, "dhcp").value_or(mode == NetworkMode::Hostonly ? "on" : "off") == "on";
  // IPv6 frames cross these networks unchanged; vnet's router advertisements
  // and DHCPv6 run only when asked (--ipv6 on, --ra on or --dhcp6 on).
  const auto dhcp6 = optional_string(req, "dhcp6");
  const bool ipv6 = on_off_field(req, "ipv6", false) || on_off_field(req, "ra", false) || (dhcp6 && *dhcp6 != "off");
  if (mode != NetworkMode::Hostonly && !dhcp && !ipv6) {
    for (const char* key : {"subnet", "gateway", "dhcp_start", "dhcp_reserve", "dns", "bootfile", "tftp", "domain"})
      if (req.contains(key))
        throw UserError(std::string("--") + (std::string(key) == "subnet" ? "net" : key) + " needs a DHCP server: add "
                        "--dhcp on (or use --mode nat or hostonly)");
    return std::nullopt;
  }
  // The NAT gateway's DHCP, TFTP, RA, DHCPv6 and ping answers, with
  // translation to the outside off by policy (nat/fwd.hpp): nothing leaves,
  // except on a host-only network the gateway addresses, which reach the
  // host's loopback. No default route and no DNS server is offered, over
  // DHCP, RAs (router lifetime 0) or DHCPv6.
  nat::NatConfig c = nat_config_from(req);
  c.dhcp = dhcp;
  c.outside = false;
  c.dns_forwarder = false;
  c.offer_router = false;
  c.ipv6 = ipv6;
  if (mode != NetworkMode::Hostonly) {
    if (on_off_field(req, "host_loopback", false))
      throw UserError("--host-loopback on: guests of a " + std::string(to_string(mode)) +
                      " network never reach the host (use --mode hostonly)");
    c.host_loopback = false;
  }
  return c;
}

HostSetup host_setup_from(NetworkMode mode, const json& req) {
  HostSetup h;
  h.uplink = optional_string(req, "uplink").value_or("");
  h.host_tap = on_off_field(req, "host_tap", false);
  if (!h.uplink.empty() && mode != NetworkMode::Bridged && mode != NetworkMode::KernelNat)
    throw UserError("--uplink belongs to --mode bridged or kernel-nat");
  if (mode == NetworkMode::Bridged && h.uplink.empty())
    throw UserError("--mode bridged needs --uplink IF: the host interface whose LAN the guests join");
  if (!h.uplink.empty() && !privsep::valid_ifname(h.uplink))
    throw UserError("--uplink " + h.uplink + ": not an interface name");
  if (h.host_tap && mode != NetworkMode::Hostonly) throw UserError("--host-tap belongs to --mode hostonly");
  return h;
}

PortSettings port_settings_from(const json& req) {
  PortSettings s;
  if (auto link = optional_string(req, "link")) {
    if (*link != "up" && *link != "down") throw UserError("--link " + *link + ": expected up or down");
    s.link_up = *link == "up";
  }
  if (auto group = optional_string(req, "bwgroup")) s.bandwidth_group = *group == "none" ? "" : *group;
  auto dir = optional_string(req, "direction").value_or("both");
  if (dir == "both") s.direction = Direction::Both;
  else if (dir == "in") s.direction = Direction::In;
  else if (dir == "out") s.direction = Direction::Out;
  else throw UserError("--direction " + dir + ": expected in, out or both");

  static constexpr const char* kImpairmentKeys[] = {"rate", "burst", "delay", "jitter", "loss", "dup", "reorder", "queue"};
  bool any = false;
  for (const char* k : kImpairmentKeys) any = any || req.contains(k);
  if (auto it = req.find("clear"); it != req.end() && it->is_boolean() && it->get<bool>()) {
    s.impairment = ImpairmentParams{};
    return s;
  }
  if (!any) return s;
  ImpairmentParams p;
  parse_into(req, "rate", p.rate_bps, parse_rate, "10mbit");
  parse_into(req, "burst", p.burst_bytes, parse_size, "32k");
  parse_into(req, "delay", p.delay, parse_duration, "25ms");
  parse_into(req, "jitter", p.jitter, parse_duration, "5ms");
  parse_into(req, "loss", p.loss, parse_probability, "1%");
  parse_into(req, "dup", p.duplicate, parse_probability, "0.1%");
  parse_into(req, "reorder", p.reorder, parse_probability, "1%");
  parse_into(req, "queue", p.queue_bytes, parse_size, "1m");
  if (p.queue_bytes < 128 * 1024 || p.queue_bytes > (256u << 20))
    throw UserError("--queue: expected between 128k and 256m");
  s.impairment = p;
  return s;
}

json handle_request(Engine& engine, const json& request) {
  try {
    if (!request.is_object()) throw UserError("a request must be a JSON object");
    json reply = dispatch(engine, request);
    if (Persistence* saved = engine.persistence()) saved->record(request, reply);
    return reply;
  } catch (const UserError& e) {
    return {{"ok", false}, {"error", e.what()}};
  } catch (const json::exception& e) {
    return {{"ok", false}, {"error", std::string("bad request: ") + e.what()}};
  }
}

json handle_request_line(Engine& engine, std::string_view line, json* parsed) {
  json request = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) return {{"ok", false}, {"error", "bad request: not valid JSON"}};
  json response = handle_request(engine, request);
  if (parsed) *parsed = std::move(request);
  return response;
}

}  // namespace vnet
