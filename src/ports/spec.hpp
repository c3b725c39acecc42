// Port specifications in QEMU's own -netdev option syntax, so that a QEMU
// user reads them at once: "stream,server=on,addr.type=unix,addr.path=P",
// "socket,listen=:1234", "dgram,local.type=...", "tap,ifname=tap0",
// "pcap,file=out.pcap". A comma inside a value is written twice, as in QEMU.
//
// Control clients send these strings, so parsing is strict: unknown kinds and
// keys, repeated keys and bad values are errors that name the problem.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vnet {

struct PortSpec {
  std::string kind;
  std::vector<std::pair<std::string, std::string>> options;

  const std::string* find(std::string_view key) const;
  std::string get(std::string_view key, std::string_view fallback = "") const;
  // Every value of a repeatable key, in the order given.
  std::vector<std::string> all(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  std::string to_string() const;
};

// Throws UserError with a one-line explanation.
PortSpec parse_port_spec(std::string_view text);

// "on"/"off" (and QEMU's yes/no/true/false); throws on anything else.
bool parse_switch(std::string_view key, std::string_view value);

}  // namespace vnet
