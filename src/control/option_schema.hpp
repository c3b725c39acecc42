// The options of networks and ports, each written once: its request field
// (also its config-file key), its command-line flag, its type and its help.
// The CLI builds `net add` and `port add|set` flags from these tables, the
// config file reader its accepted keys and their types, and the control
// protocol its accepted fields, so a new option is one entry here (plus the
// engine code that uses it) and every surface checks it the same way.
#pragma once

#include <string_view>
#include <vector>

namespace vnet {

enum class OptionType {
  Text,    // a string ("10.0.2.0/24", "25ms")
  Count,   // a non-negative integer (JSON and TOML numbers, not strings)
  Choice,  // one of `choices`
  List,    // strings; on the command line a repeatable flag
  Flag,    // true when given (command line and requests only)
};

struct OptionSpec {
  std::string_view key;   // request field and config-file key
  std::string_view flag;  // command-line flag
  OptionType type;
  std::vector<std::string_view> choices;
  std::string_view help;
};

// `vnet net add` / [[network]] / net_add, apart from the name.
const std::vector<OptionSpec>& network_option_schema();
// `vnet port add|set` / [[network.port]] / port_add, port_set, apart from
// the spec: link state, impairments, bandwidth group.
const std::vector<OptionSpec>& port_setting_schema();

// The keys of a schema, optionally only those of some types.
std::vector<std::string_view> schema_keys(const std::vector<OptionSpec>& schema);
std::vector<std::string_view> schema_keys(const std::vector<OptionSpec>& schema, std::vector<OptionType> types);

}  // namespace vnet
