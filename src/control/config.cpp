#include "control/config.hpp"

#include <toml++/toml.h>

#include <fstream>
#include <sstream>

#include "core/error.hpp"

namespace vnet {

using nlohmann::json;

namespace {

std::string where(const toml::node& node, const std::string& source) {
  const auto& src = node.source();
  return source + ":" + std::to_string(src.begin.line);
}

// Copies the listed keys of a TOML table into a request, keeping their types
// as the control protocol expects them (strings stay strings, integers stay
// unsigned integers), and rejects any key not listed.
void copy_keys(const toml::table& table, json& request, std::initializer_list<const char*> string_keys,
               std::initializer_list<const char*> integer_keys, std::initializer_list<const char*> skip_keys,
               const std::string& source) {
  for (const auto& [key, value] : table) {
    std::string k(key.str());
    auto is = [&k](auto keys) {
      for (const char* c : keys)
        if (k == c) return true;
      return false;
    };
    if (is(skip_keys)) continue;
    if (is(string_keys)) {
      if (!value.is_string()) throw UserError(where(value, source) + ": '" + k + "' must be a string");
      request[k] = value.as_string()->get();
    } else if (is(integer_keys)) {
      if (!value.is_integer() || value.as_integer()->get() < 0)
        throw UserError(where(value, source) + ": '" + k + "' must be a non-negative integer");
      request[k] = static_cast<std::uint64_t>(value.as_integer()->get());
    } else {
      throw UserError(where(value, source) + ": unknown key '" + k + "'");
    }
  }
}

// Port forwards of a nat network: `forwards = ["RULE", ...]` and/or
// [[network.forward]] tables with `rule = "RULE"`, each a pf_add request.
void add_forward_requests(const toml::table& net, const json& net_name, const std::string& source,
                          std::vector<json>& requests) {
  auto add = [&](const std::string& rule) { requests.push_back({{"cmd", "pf_add"}, {"net", net_name}, {"rule", rule}}); };
  if (const toml::node* list = net.get("forwards")) {
    if (!list->is_array()) throw UserError(where(*list, source) + ": forwards must be a list of strings");
    for (const auto& r : *list->as_array()) {
      if (!r.is_string()) throw UserError(where(r, source) + ": forwards must be a list of strings");
      add(r.as_string()->get());
    }
  }
  const toml::node* tables = net.get("forward");
  if (!tables) return;
  if (!tables->is_array_of_tables()) throw UserError(where(*tables, source) + ": use [[network.forward]] tables");
  for (const auto& node : *tables->as_array()) {
    json req;
    copy_keys(*node.as_table(), req, {"rule"}, {}, {}, source);
    if (!req.contains("rule")) throw UserError(where(node, source) + ": a [[network.forward]] needs a rule");
    add(req["rule"].get<std::string>());
  }
}

// A list of strings, such as dns_upstream = ["198.51.100.10", "127.0.0.53"].
void copy_string_list(const toml::table& table, const char* key, json& request, const std::string& source) {
  const toml::node* node = table.get(key);
  if (!node) return;
  const toml::array* list = node->as_array();
  if (!list) throw UserError(where(*node, source) + ": " + key + " must be a list of strings");
  json items = json::array();
  for (const auto& item : *list) {
    if (!item.is_string()) throw UserError(where(item, source) + ": " + key + " must be a list of strings");
    items.push_back(item.as_string()->get());
  }
  request[key] = items;
}

}  // namespace

Config parse_config(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw UserError(source + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  Config config;
  for (const auto& [key, value] : root) {
    if (key.str() == "log_level") {
      if (!value.is_string()) throw UserError(where(value, source) + ": log_level must be a string");
      config.log_level = value.as_string()->get();
    } else if (key.str() != "network") {
      throw UserError(where(value, source) + ": unknown key '" + std::string(key.str()) + "'");
    }
  }
  const toml::node* networks = root.get("network");
  if (!networks) return config;
  if (!networks->is_array_of_tables()) throw UserError(where(*networks, source) + ": use [[network]] tables");
  for (const auto& net_node : *networks->as_array()) {
    const toml::table& net = *net_node.as_table();
    json add = {{"cmd", "net_add"}};
    copy_keys(net, add,
              {"name", "mode", "mac_aging", "subnet", "gateway", "dns", "dhcp_start", "dhcp", "host_loopback",
               "restrict", "tftp", "bootfile", "domain"},
              {"mtu", "mac_limit"}, {"port", "dns_upstream", "dhcp_reserve", "forward", "forwards"}, source);
    for (const char* key : {"dns_upstream", "dhcp_reserve"}) copy_string_list(net, key, add, source);
    if (!add.contains("name")) throw UserError(where(net, source) + ": a [[network]] needs a name");
    config.requests.push_back(add);
    add_forward_requests(net, add["name"], source, config.requests);
    const toml::node* ports = net.get("port");
    if (!ports) continue;
    if (!ports->is_array_of_tables()) throw UserError(where(*ports, source) + ": use [[network.port]] tables");
    for (const auto& port_node : *ports->as_array()) {
      json port = {{"cmd", "port_add"}, {"net", add["name"]}};
      copy_keys(*port_node.as_table(), port,
                {"spec", "link", "direction", "rate", "burst", "delay", "jitter", "loss", "dup", "reorder", "queue"},
                {}, {}, source);
      if (!port.contains("spec")) throw UserError(where(port_node, source) + ": a [[network.port]] needs a spec");
      config.requests.push_back(port);
    }
  }
  return config;
}

Config load_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UserError(errno_text("cannot read config file " + path));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

}  // namespace vnet
