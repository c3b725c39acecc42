#include "ports/spec.hpp"

#include <algorithm>
#include <array>

#include "core/error.hpp"

namespace vnet {
namespace {

struct KindKeys {
  std::string_view kind;
  std::vector<std::string_view> keys;
  std::vector<std::string_view> repeatable = {};
};

// Keys every kind accepts: "id" as QEMU has it (ignored), and 802.1Q
// membership: vlan=N (access port, or a trunk's native VLAN), trunk=LIST.
constexpr std::array<std::string_view, 3> kCommonKeys = {"id", "vlan", "trunk"};

const std::vector<KindKeys>& known_kinds() {
  static const std::vector<KindKeys> kinds = {
      {"stream", {"server", "addr.type", "addr.path", "addr.host", "addr.port", "addr.abstract", "reconnect"}},
      {"socket", {"listen", "connect", "mcast", "udp", "localaddr"}},
      {"dgram",
       {"local.type", "local.path", "local.host", "local.port", "remote.type", "remote.path", "remote.host",
        "remote.port"}},
      {"tap", {"ifname", "netns"}},
      {"uplink", {"ifname", "netns"}},
      {"member", {"ifname"}},
      {"udp-tunnel", {"local", "remote"}},
      {"pcap", {"file"}},
      {"vde", {"dir", "connect"}},
      {"vxlan", {"vni", "local", "remote", "group", "dev", "udpcsum"}, {"remote"}},
      {"vhost-user", {"path", "server"}},
  };
  return kinds;
}

std::string join(const std::vector<std::string_view>& items) {
  std::string out;
  for (auto s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

// Splits on single commas; ",," stands for a literal comma.
std::vector<std::string> split_options(std::string_view text) {
  std::vector<std::string> parts(1);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == ',') {
      if (i + 1 < text.size() && text[i + 1] == ',') {
        parts.back() += ',';
        ++i;
      } else {
        parts.emplace_back();
      }
    } else {
      parts.back() += text[i];
    }
  }
  return parts;
}

}  // namespace

const std::string* PortSpec::find(std::string_view key) const {
  for (const auto& [k, v] : options)
    if (k == key) return &v;
  return nullptr;
}

std::string PortSpec::get(std::string_view key, std::string_view fallback) const {
  const std::string* v = find(key);
  return v ? *v : std::string(fallback);
}

std::vector<std::string> PortSpec::all(std::string_view key) const {
  std::vector<std::string> values;
  for (const auto& [k, v] : options)
    if (k == key) values.push_back(v);
  return values;
}

std::string PortSpec::to_string() const {
  std::string out = kind;
  for (const auto& [k, v] : options) {
    out += ',' + k + '=';
    for (char c : v) out += c == ',' ? std::string(",,") : std::string(1, c);
  }
  return out;
}

PortSpec parse_port_spec(std::string_view text) {
  if (text.empty()) throw UserError("empty port spec: expected e.g. stream,server=on,addr.type=unix,addr.path=P");
  auto parts = split_options(text);
  PortSpec spec;
  spec.kind = parts[0];
  const auto& kinds = known_kinds();
  auto kind = std::find_if(kinds.begin(), kinds.end(), [&](const KindKeys& k) { return k.kind == spec.kind; });
  if (kind == kinds.end()) {
    std::vector<std::string_view> names;
    for (const auto& k : kinds) names.push_back(k.kind);
    throw UserError("unknown port kind '" + spec.kind + "' (known: " + join(names) + ")");
  }
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    auto eq = part.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UserError("bad option '" + part + "' in port spec: expected KEY=VALUE");
    std::string key = part.substr(0, eq), value = part.substr(eq + 1);
    bool known = std::find(kind->keys.begin(), kind->keys.end(), key) != kind->keys.end() ||
                 std::find(kCommonKeys.begin(), kCommonKeys.end(), key) != kCommonKeys.end();
    if (!known)
      throw UserError("unknown option '" + key + "' for " + spec.kind + " (allowed: " + join(kind->keys) +
                      ", id, vlan, trunk)");
    const bool repeatable = std::find(kind->repeatable.begin(), kind->repeatable.end(), key) != kind->repeatable.end();
    if (spec.has(key) && !repeatable) throw UserError("option '" + key + "' given twice");
    spec.options.emplace_back(std::move(key), std::move(value));
  }
  return spec;
}

bool parse_switch(std::string_view key, std::string_view value) {
  if (value == "on" || value == "yes" || value == "true") return true;
  if (value == "off" || value == "no" || value == "false") return false;
  throw UserError(std::string(key) + "=" + std::string(value) + ": expected on or off");
}

}  // namespace vnet
