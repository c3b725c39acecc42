// `vnet status` for people: a table per network, drops only where non-zero.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace vnet::cli {

std::string render_status(const nlohmann::json& status);

// `vnet status --watch`: per port receive and send rates between two
// snapshots taken `seconds` apart (ports present in both).
std::string render_rates(const nlohmann::json& before, const nlohmann::json& after, double seconds);

}  // namespace vnet::cli
