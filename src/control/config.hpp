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
// so every key means exactly what the matching CLI flag means.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vnet {

struct Config {
  std::string log_level;
  std::vector<nlohmann::json> requests;
};

// Throws UserError naming the file, line and problem.
Config load_config_file(const std::string& path);
Config parse_config(std::string_view text, const std::string& source_name);

}  // namespace vnet
