// The TOML config file, declaring the same model as the CLI:
//
//   log_level = "info"
//   [[network]]
//   name = "lab"
//   mode = "switch"            # switch | hub
//   mtu = 1500
//   mac_aging = "300s"
//   mac_limit = 1024
//     [[network.port]]
//     spec = "stream,server=on,addr.type=unix,addr.path=/tmp/lab.sock"
//     link = "up"
//     direction = "both"       # in | out | both, for the impairments below
//     rate = "10mbit"
//     delay = "25ms"
//
// It is translated into control requests (request.hpp) and applied in order,
// so every key means exactly what the matching CLI flag means. Each request
// remembers where its keys were written, so that an error found while
// applying it (a bad value, a bad port spec) is reported in the file's own
// terms: `lab.toml:3: mode = "swich": expected "switch", "hub" or "nat"`.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vnet {

class Engine;

// Where one key of a request was written: its line and `key = value` as in the file.
struct KeySource {
  int line = 0;
  std::string text;
  std::string value;       // a string value as written, else empty
  bool is_string = false;  // a string value: alternatives in messages are quoted like it
};

// Where one request came from: its table's line and the lines of its keys.
struct RequestSource {
  int line = 0;
  std::string main_key;  // what a problem without a named key is about (name, spec, rule)
  std::map<std::string, KeySource> keys;
};

struct Config {
  std::string log_level;
  std::vector<nlohmann::json> requests;
  std::string source_name;             // the file; empty for built-in configs
  std::vector<RequestSource> sources;  // one per request when source_name is set
};

// Throws UserError naming the file, line and problem.
Config load_config_file(const std::string& path);
Config parse_config(std::string_view text, const std::string& source_name);

// Applies the requests in order; the first failure throws UserError, in the
// file's terms when the config came from a file.
void apply_config(Engine& engine, const Config& config);

// A request's error message (written for the CLI: "--mode swich: expected
// switch, hub or nat") restated for the file: "f.toml:3: mode = "swich":
// expected "switch", "hub" or "nat"".
std::string config_error(const Config& config, std::size_t request_index, const std::string& message);

}  // namespace vnet
