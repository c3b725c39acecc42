// The control protocol: one JSON object per line over the engine's unix
// socket, e.g. {"cmd":"port_add","net":"default","spec":"tap,ifname=t0"},
// answered by one line: {"ok":true,...} or {"ok":false,"error":"..."}.
// The config file is turned into the same requests (config.hpp), so the file
// and the CLI cannot drift apart. Requests come from any local process that
// can open the socket: every field is checked for type and range.
#pragma once

#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/engine.hpp"

namespace vnet {

// Runs one request; never throws: errors become {"ok":false,"error":...}.
// "shutdown" and "capture" need the connection and are answered by the
// server; here they are only validated.
nlohmann::json handle_request(Engine& engine, const nlohmann::json& request);

// Parses a line; malformed JSON is reported as an error reply. The parsed
// request is handed back through `parsed` for callers that act on it too.
nlohmann::json handle_request_line(Engine& engine, std::string_view line, nlohmann::json* parsed = nullptr);

// Field helpers shared with the config file reader (throw UserError).
NetworkOptions network_options_from(const nlohmann::json& request);
// The gateway a new network of this mode gets (none: nullopt), from the
// request's DHCP/NAT fields: nat as asked; hostonly, and internal, switch or
// hub with --dhcp on, DHCP with nothing translated beyond the host.
std::optional<nat::NatConfig> gateway_config_from(NetworkMode mode, const nlohmann::json& req);
nat::NatConfig nat_config_from(const nlohmann::json& request);
// --uplink and --host-tap of the root-only modes, checked against the mode.
HostSetup host_setup_from(NetworkMode mode, const nlohmann::json& req);
PortSettings port_settings_from(const nlohmann::json& request);
// The fields of port_add and port_set that are port settings (link state,
// impairments, bandwidth group), for checking requests and saving ports.
const std::vector<std::string_view>& port_setting_keys();

}  // namespace vnet
