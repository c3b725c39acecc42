#include "control/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "control/engine.hpp"
#include "control/option_schema.hpp"
#include "control/request.hpp"
#include "core/edit_distance.hpp"
#include "core/error.hpp"

namespace vnet {

using nlohmann::json;

namespace {

int line_of(const toml::node& node) { return static_cast<int>(node.source().begin.line); }

// A value as users write it: strings in double quotes (toml++ would print
// 'single-quoted' literal strings), lists bracketed, anything else as TOML.
void write_value(std::ostream& out, const toml::node& value) {
  if (const auto* s = value.as_string()) {
    out << '"';
    for (char c : s->get()) {
      if (c == '"' || c == '\\') out << '\\';
      out << c;
    }
    out << '"';
  } else if (const auto* list = value.as_array()) {
    out << '[';
    for (std::size_t i = 0; i < list->size(); ++i) {
      out << (i ? ", " : "");
      write_value(out, *list->get(i));
    }
    out << ']';
  } else {
    value.visit([&out](const auto& v) { out << v; });
  }
}

// `key = value`, as in the file.
std::string key_text(std::string_view key, const toml::node& value) {
  std::ostringstream out;
  out << key << " = ";
  write_value(out, value);
  return out.str();
}


using Keys = std::vector<std::string_view>;

bool listed(const Keys& keys, std::string_view key) { return std::find(keys.begin(), keys.end(), key) != keys.end(); }

Keys operator+(Keys a, const Keys& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Builds the requests of one file, recording where each key was written.
class Parser {
 public:
  explicit Parser(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const toml::node& node, const std::string& what) const {
    throw UserError(source_ + ":" + std::to_string(line_of(node)) + ": " + what);
  }
  [[noreturn]] void fail_key(std::string_view key, const toml::node& value, const std::string& what) const {
    fail(value, key_text(key, value) + ": " + what);
  }

  // Copies the listed keys of a table into a request, keeping their types as
  // the control protocol expects them (strings stay strings, integers stay
  // unsigned integers). Keys in `handled` are the caller's; any other key is
  // an error that lists the known ones.
  void copy_keys(const toml::table& table, const char* table_name, json& request, RequestSource& where,
                 const Keys& string_keys, const Keys& integer_keys, const Keys& handled) const {
    for (const auto& [key, value] : table) {
      const std::string k(key.str());
      if (listed(handled, k)) continue;
      if (listed(string_keys, k)) {
        if (!value.is_string()) fail_key(k, value, "expected a string (in double quotes)");
        request[k] = value.as_string()->get();
      } else if (listed(integer_keys, k)) {
        if (!value.is_integer() || value.as_integer()->get() < 0)
          fail_key(k, value, "expected a non-negative integer (no quotes)");
        request[k] = static_cast<std::uint64_t>(value.as_integer()->get());
      } else {
        fail_key(k, value, unknown_key_text(k, table_name, string_keys + integer_keys + handled));
      }
      remember(where, k, value);
    }
  }

  void remember(RequestSource& where, const std::string& key, const toml::node& value) const {
    where.keys[key] = KeySource{line_of(value), key_text(key, value),
                                value.is_string() ? value.as_string()->get() : std::string(), value.is_string()};
  }

  static std::string unknown_key_text(const std::string& key, const char* table_name, const Keys& known) {
    std::string text = std::string("unknown key in a ") + table_name + " table";
    std::string_view closest;
    std::size_t best = 3;  // a suggestion only for a near miss (two edits at most)
    for (std::string_view k : known)
      if (std::size_t d = edit_distance(key, k); d < best) best = d, closest = k;
    if (!closest.empty()) return text + " (did you mean " + std::string(closest) + "?)";
    std::string list;
    for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    return text + " (known keys: " + list + ")";
  }

  // Port forwards of a nat network: `forwards = ["RULE", ...]` and/or
  // [[network.forward]] tables with `rule = "RULE"`, each a pf_add request.
  void add_forwards(const toml::table& net, const json& net_name, Config& config) const {
    auto add = [&](const std::string& rule, RequestSource where) {
      where.main_key = "rule";
      config.requests.push_back({{"cmd", "pf_add"}, {"net", net_name}, {"rule", rule}});
      config.sources.push_back(std::move(where));
    };
    if (const toml::node* list = net.get("forwards")) {
      if (!list->is_array()) fail_key("forwards", *list, "expected a list of strings");
      for (const auto& r : *list->as_array()) {
        if (!r.is_string()) fail_key("forwards", *list, "expected a list of strings");
        RequestSource where{line_of(r), "rule", {}};
        where.keys["rule"] = KeySource{line_of(r), key_text("forwards", *list), r.as_string()->get(), true};
        add(r.as_string()->get(), std::move(where));
      }
    }
    const toml::node* tables = net.get("forward");
    if (!tables) return;
    if (!tables->is_array_of_tables()) fail(*tables, "forward: use [[network.forward]] tables");
    for (const auto& node : *tables->as_array()) {
      json req;
      RequestSource where{line_of(node), "rule", {}};
      copy_keys(*node.as_table(), "[[network.forward]]", req, where, {"rule"}, {}, {});
      if (!req.contains("rule")) fail(node, "a [[network.forward]] needs a rule, e.g. rule = \"tcp::2222-:22\"");
      add(req["rule"].get<std::string>(), std::move(where));
    }
  }

  // A list of strings, such as dns_upstream = ["198.51.100.10", "127.0.0.53"].
  void copy_string_list(const toml::table& table, const char* key, json& request, RequestSource& where) const {
    const toml::node* node = table.get(key);
    if (!node) return;
    const toml::array* list = node->as_array();
    if (!list) fail_key(key, *node, "expected a list of strings, e.g. [\"a\", \"b\"]");
    json items = json::array();
    for (const auto& item : *list) {
      if (!item.is_string()) fail_key(key, *node, "expected a list of strings, e.g. [\"a\", \"b\"]");
      items.push_back(item.as_string()->get());
    }
    request[key] = items;
    remember(where, key, *node);
  }

  // [[network.bwgroup]] name = "vms", rate = "10mbit": before the ports,
  // which may join it with bwgroup = "vms".
  void add_bandwidth_groups(const toml::table& net, const json& net_name, Config& config) const {
    const toml::node* groups = net.get("bwgroup");
    if (!groups) return;
    if (!groups->is_array_of_tables()) fail(*groups, "bwgroup: use [[network.bwgroup]] tables");
    for (const auto& node : *groups->as_array()) {
      json req = {{"cmd", "bwgroup_add"}, {"net", net_name}};
      RequestSource where{line_of(node), "name", {}};
      copy_keys(*node.as_table(), "[[network.bwgroup]]", req, where, {"name", "rate", "burst"}, {}, {});
      if (!req.contains("name") || !req.contains("rate"))
        fail(node, "a [[network.bwgroup]] needs a name and a rate, e.g. name = \"vms\", rate = \"10mbit\"");
      config.requests.push_back(req);
      config.sources.push_back(std::move(where));
    }
  }

  void add_ports(const toml::table& net, const json& net_name, Config& config) const {
    const toml::node* ports = net.get("port");
    if (!ports) return;
    if (!ports->is_array_of_tables()) fail(*ports, "port: use [[network.port]] tables");
    for (const auto& port_node : *ports->as_array()) {
      json port = {{"cmd", "port_add"}, {"net", net_name}};
      RequestSource where{line_of(port_node), "spec", {}};
      copy_keys(*port_node.as_table(), "[[network.port]]", port, where,
                Keys{"spec"} + schema_keys(port_setting_schema(), {OptionType::Text, OptionType::Choice}), {}, {});
      if (!port.contains("spec"))
        fail(port_node, "a [[network.port]] needs a spec, e.g. spec = \"stream,server=on,addr.type=unix,addr.path=P\"");
      config.requests.push_back(port);
      config.sources.push_back(std::move(where));
    }
  }

  Config parse(std::string_view text) const {
    toml::table root;
    try {
      root = toml::parse(text, source_);
    } catch (const toml::parse_error& e) {
      throw UserError(source_ + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
    }
    Config config;
    config.source_name = source_;
    for (const auto& [key, value] : root) {
      if (key.str() == "log_level") {
        if (!value.is_string()) fail_key("log_level", value, "expected a string: \"debug\", \"info\", \"warn\" or \"error\"");
        config.log_level = value.as_string()->get();
      } else if (key.str() != "network") {
        fail_key(key.str(), value, unknown_key_text(std::string(key.str()), "top-level", {"log_level", "network"}));
      }
    }
    const toml::node* networks = root.get("network");
    if (!networks) return config;
    if (!networks->is_array_of_tables()) fail(*networks, "network: use [[network]] tables");
    std::map<std::string, int> declared;  // network name -> line
    for (const auto& net_node : *networks->as_array()) {
      const toml::table& net = *net_node.as_table();
      json add = {{"cmd", "net_add"}};
      RequestSource where{line_of(net_node), "name", {}};
      const auto& schema = network_option_schema();
      const Keys lists = schema_keys(schema, {OptionType::List});
      copy_keys(net, "[[network]]", add, where, Keys{"name"} + schema_keys(schema, {OptionType::Text, OptionType::Choice}),
                schema_keys(schema, {OptionType::Count}), Keys{"port", "forward", "forwards", "bwgroup"} + lists);
      for (std::string_view key : lists) copy_string_list(net, std::string(key).c_str(), add, where);
      if (!add.contains("name")) fail(net_node, "a [[network]] needs a name, e.g. name = \"lab\"");
      const std::string name = add["name"];
      if (auto [it, fresh] = declared.emplace(name, where.keys["name"].line); !fresh)
        fail_key("name", *net.get("name"),
                 "network \"" + name + "\" is already declared at line " + std::to_string(it->second));
      config.requests.push_back(add);
      config.sources.push_back(std::move(where));
      add_forwards(net, add["name"], config);
      add_bandwidth_groups(net, add["name"], config);
      add_ports(net, add["name"], config);
    }
    return config;
  }

 private:
  std::string source_;
};

bool is_plain_word(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

// "expected switch, hub or nat" -> "expected "switch", "hub" or "nat"": the
// choices of a string key written as the file must write them.
std::string quote_choices(const std::string& problem) {
  const std::string lead = "expected ";
  if (problem.rfind(lead, 0) != 0) return problem;
  std::string rest = problem.substr(lead.size());
  std::vector<std::string> words;
  std::string out = lead;
  std::size_t pos = 0;
  while (pos <= rest.size()) {
    std::size_t comma = rest.find(", ", pos), orr = rest.find(" or ", pos);
    std::size_t end = std::min(comma, orr);
    std::string word = rest.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (!is_plain_word(word)) return problem;
    out += "\"" + word + "\"";
    if (end == std::string::npos) return out;
    const std::string sep = end == comma ? ", " : " or ";
    out += sep;
    pos = end + sep.size();
  }
  return problem;
}

}  // namespace

Config parse_config(std::string_view text, const std::string& source) { return Parser(source).parse(text); }

Config load_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UserError(errno_text("cannot read config file " + path));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

std::string config_error(const Config& config, std::size_t index, const std::string& message) {
  if (config.source_name.empty() || index >= config.sources.size()) return message;
  const RequestSource& where = config.sources[index];
  const auto at = [&](int line) { return config.source_name + ":" + std::to_string(line) + ": "; };
  // The request's messages name CLI flags: "--mode swich: expected ...",
  // "--mtu: expected ...", "--mac-aging must be ...". The flag's key is the
  // flag with '_' for '-' (--net is the file's subnet).
  if (message.rfind("--", 0) == 0) {
    const std::size_t end = message.find_first_of(" :", 2);
    std::string key = message.substr(2, end == std::string::npos ? std::string::npos : end - 2);
    std::replace(key.begin(), key.end(), '-', '_');
    if (key == "net") key = "subnet";
    if (auto it = where.keys.find(key); it != where.keys.end()) {
      const KeySource& src = it->second;
      std::string problem = message.substr(std::min(message.size(), end));
      // Drop the value the CLI form repeats: the file's `key = value` says it.
      if (const std::string repeated = " " + src.value + ": "; src.is_string && problem.rfind(repeated, 0) == 0)
        problem = problem.substr(repeated.size());
      else if (problem.rfind(": ", 0) == 0)
        problem = problem.substr(2);
      else if (problem.rfind(" ", 0) == 0)
        problem = problem.substr(1);
      // A message about two flags ("--gateway and --dns must differ"): keys instead.
      if (problem.find("--") != std::string::npos) {
        problem = message;
        for (std::size_t p; (p = problem.find("--")) != std::string::npos;) {
          problem.erase(p, 2);
          for (std::size_t q = p; q < problem.size() && problem[q] != ' '; ++q)
            if (problem[q] == '-') problem[q] = '_';
        }
        if (problem.rfind("net ", 0) == 0) problem = "subnet " + problem.substr(4);
        return at(src.line) + src.text + ": " + problem;
      }
      if (src.is_string) problem = quote_choices(problem);
      return at(src.line) + src.text + ": " + problem;
    }
  }
  // A message that starts with one of the request's keys ("mtu must be ...").
  for (const auto& [key, src] : where.keys)
    if (message.rfind(key + " ", 0) == 0) return at(src.line) + src.text + ": " + message;
  // Anything else is about the request's main key (a bad spec, a bad rule).
  if (auto it = where.keys.find(where.main_key); it != where.keys.end())
    return at(it->second.line) + it->second.text + ": " + message;
  return at(where.line) + message;
}

void apply_config(Engine& engine, const Config& config) {
  for (std::size_t i = 0; i < config.requests.size(); ++i) {
    const json reply = handle_request(engine, config.requests[i]);
    if (!reply.value("ok", false))
      throw UserError(config_error(config, i, reply.value("error", std::string("config request failed"))));
  }
}

}  // namespace vnet
