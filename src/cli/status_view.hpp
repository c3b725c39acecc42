// `vnet status` for people: a table per network, drops only where non-zero.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace vnet::cli {

std::string render_status(const nlohmann::json& status);

}  // namespace vnet::cli
