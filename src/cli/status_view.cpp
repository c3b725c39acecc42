#include "cli/status_view.hpp"

#include <cstdio>
#include <map>

#include <fmt/format.h>

namespace vnet::cli {
namespace {

std::string human_bytes(std::uint64_t b) {
  if (b < 10 * 1024) return fmt::format("{}B", b);
  if (b < 10ull * 1024 * 1024) return fmt::format("{:.1f}K", b / 1024.0);
  if (b < 10ull * 1024 * 1024 * 1024) return fmt::format("{:.1f}M", b / 1048576.0);
  return fmt::format("{:.1f}G", b / 1073741824.0);
}

// "overflow 3, down 1" from the non-zero drop and impairment counters.
std::string notable_counters(const nlohmann::json& c) {
  static constexpr std::pair<const char*, const char*> kNames[] = {
      {"drop_overflow", "overflow"}, {"drop_oversize", "oversize"}, {"drop_runt", "runt"},
      {"drop_malformed", "malformed"}, {"drop_down", "down"},       {"drop_vlan", "vlan"},
      {"drop_guard", "guard"},       {"drop_tunnel", "tunnel"},
      {"mac_limit", "mac-limit"},    {"mac_duplicate", "dup-mac"}, {"imp_lost", "lost"},         {"imp_duplicated", "dup"},
      {"imp_reordered", "reordered"}, {"imp_delayed", "delayed"},  {"imp_shaped", "shaped"},
      {"imp_queue_drop", "shaper-drop"}};
  std::string out;
  for (auto [key, name] : kNames) {
    auto v = c.value(key, std::uint64_t{0});
    if (v == 0) continue;
    if (!out.empty()) out += ", ";
    out += fmt::format("{} {}", name, v);
  }
  return out.empty() ? "-" : out;
}

}  // namespace

std::string render_status(const nlohmann::json& status) {
  std::string out;
  for (const auto& net : status["networks"]) {
    out += fmt::format("network {} ({}, mtu {}, {} ports, {} MACs learned)\n", net["name"].get<std::string>(),
                       net["mode"].get<std::string>(), net["mtu"].get<int>(), net["ports"].size(), net["macs"].size());
    out += fmt::format("  {:<5} {:<14} {:<11} {:<5} {:>16} {:>16}  {}\n", "port", "kind", "state", "link",
                       "rx frames/bytes", "tx frames/bytes", "drops and effects");
    for (const auto& p : net["ports"]) {
      const auto& c = p["counters"];
      std::string state = p["state"];
      if (state.size() > 11) state = state.substr(0, 10) + "~";
      out += fmt::format("  {:<5} {:<14} {:<11} {:<5} {:>16} {:>16}  {}\n", p["id"].get<int>(),
                         p["kind"].get<std::string>(), state, p["link"].get<std::string>(),
                         fmt::format("{}/{}", c["rx_frames"].get<std::uint64_t>(), human_bytes(c["rx_bytes"])),
                         fmt::format("{}/{}", c["tx_frames"].get<std::uint64_t>(), human_bytes(c["tx_bytes"])),
                         notable_counters(c));
      std::string detail = p["peer"].get<std::string>();
      if (p.contains("parent")) detail += fmt::format(" (via port {})", p["parent"].get<int>());
      if (p.value("trunk", "") != "") detail += fmt::format(" trunk {}", p["trunk"].get<std::string>());
      if (p["vlan"].get<int>() != 0) detail += fmt::format(" vlan {}", p["vlan"].get<int>());
      for (const auto& [dir, text] : p["impairments"].items()) detail += fmt::format(" [{}: {}]", dir, text.get<std::string>());
      if (p.contains("bwgroup")) detail += fmt::format(" bwgroup {}", p["bwgroup"].get<std::string>());
      if (!detail.empty()) out += fmt::format("        {}\n", detail);
    }
    if (const auto& nat = net["nat"]; nat.is_object()) {
      out += fmt::format("  nat: {} gateway {} dns {}{}{}\n", nat.value("net", ""), nat.value("gateway", ""),
                         nat.value("dns", ""), nat.value("restrict", false) ? ", restricted" : "",
                         nat.value("host_loopback", true) ? "" : ", no host loopback");
      for (const auto& l : nat.value("leases", nlohmann::json::array()))
        out += fmt::format("    lease {} to {}{} ({})\n", l.value("ip", ""), l.value("mac", ""),
                           l.value("hostname", "").empty() ? "" : " " + l.value("hostname", ""), l.value("state", ""));
      for (const auto& l : nat.value("leases6", nlohmann::json::array()))
        out += fmt::format("    lease6 {} to {} duid {} iaid {} ({})\n", l.value("ip", ""), l.value("mac", ""),
                           l.value("duid", ""), l.value("iaid", 0u), l.value("state", ""));
      for (const auto& f : nat.value("forwards", nlohmann::json::array()))
        out += fmt::format("    forward {}: {}\n", f.value("name", ""), f.value("rule", ""));
      out += fmt::format("    flows: {} tcp, {} udp\n", nat.value("tcp", nlohmann::json::array()).size(),
                         nat.value("udp", nlohmann::json::array()).size());
    }
    for (const auto& d : net.value("duplicate_macs", nlohmann::json::array()))
      out += fmt::format("  WARNING: MAC {} used by ports {} and {} ({} moves): give each guest its own MAC "
                         "(`vnet attach {}`)\n",
                         d.value("mac", ""), d["ports"][0].get<int>(), d["ports"][1].get<int>(),
                         d.value("times", std::uint64_t{0}), net["name"].get<std::string>());
    if (!net["macs"].empty()) {
      out += "  learned MACs:\n";
      for (const auto& m : net["macs"])
        out += fmt::format("    {} on port {}, seen {:.0f}s ago\n", m["mac"].get<std::string>(), m["port"].get<int>(),
                           m["age_s"].get<double>());
      if (const auto more = net.value("macs_truncated", std::uint64_t{0}); more > 0)
        out += fmt::format("    ... and {} more (not listed)\n", more);
    }
  }
  if (status["networks"].empty()) out += "no networks (add one with `vnet net add NAME`)\n";
  if (const auto& e = status["engine"]; e.is_object())
    out += fmt::format("engine: uid {} gid {}, capabilities {}, no_new_privs {}, seccomp {}, privileged helper {}\n",
                       e.value("uid", -1L), e.value("gid", -1L), e.value("cap_eff", "?"), e.value("no_new_privs", -1),
                       e.value("seccomp", "?"), e.value("privileged_helper", false) ? "yes" : "no");
  if (const auto& h = status["host"]; h.is_object())
    out += fmt::format("host: fd limit {}, control connections refused {}, dropped for unread replies {}\n",
                       h.value("nofile_limit", std::uint64_t{0}), h.value("control_refused", std::uint64_t{0}),
                       h.value("control_over_cap", std::uint64_t{0}));
  return out;
}

namespace {

std::string human_rate(double bytes_per_s) {
  const double bits = bytes_per_s * 8;
  char buf[32];
  if (bits >= 1e9) std::snprintf(buf, sizeof buf, "%.2f Gbit/s", bits / 1e9);
  else if (bits >= 1e6) std::snprintf(buf, sizeof buf, "%.2f Mbit/s", bits / 1e6);
  else if (bits >= 1e3) std::snprintf(buf, sizeof buf, "%.1f kbit/s", bits / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f bit/s", bits);
  return buf;
}

}  // namespace

std::string render_rates(const nlohmann::json& before, const nlohmann::json& after, double seconds) {
  std::map<std::pair<std::string, std::uint64_t>, nlohmann::json> old;
  for (const auto& net : before.value("networks", nlohmann::json::array()))
    for (const auto& port : net.value("ports", nlohmann::json::array()))
      old[{net.value("name", ""), port.value("id", std::uint64_t{0})}] = port.value("counters", nlohmann::json::object());
  std::string out = fmt::format("rates over the last {:g} s:\n", seconds);
  char line[160];
  std::snprintf(line, sizeof line, "  %-16s %-5s %16s %10s %16s %10s\n", "network", "port", "rx", "rx frames/s", "tx",
                "tx frames/s");
  out += line;
  for (const auto& net : after.value("networks", nlohmann::json::array())) {
    for (const auto& port : net.value("ports", nlohmann::json::array())) {
      auto it = old.find({net.value("name", ""), port.value("id", std::uint64_t{0})});
      if (it == old.end() || seconds <= 0) continue;
      const auto& now = port.value("counters", nlohmann::json::object());
      auto rate = [&](const char* key) {
        const double a = it->second.value(key, 0.0), b = now.value(key, 0.0);
        return b >= a ? (b - a) / seconds : 0.0;
      };
      std::snprintf(line, sizeof line, "  %-16s %-5s %16s %10.0f %16s %10.0f\n", net.value("name", "").c_str(),
                    std::to_string(port.value("id", 0)).c_str(), human_rate(rate("rx_bytes")).c_str(),
                    rate("rx_frames"), human_rate(rate("tx_bytes")).c_str(), rate("tx_frames"));
      out += line;
    }
  }
  return out;
}

}  // namespace vnet::cli
