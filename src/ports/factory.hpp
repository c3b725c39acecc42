// Turns a parsed PortSpec into a live port of the right transport.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>

#include "fabric/network.hpp"
#include "ports/spec.hpp"

namespace vnet {

// Who may connect to the unix sockets the engine creates for guests: the
// owner only (0600), or also one group (`vnet up --group NAME`: 0660). The
// engine runs with umask 077, so a socket file never exists with more.
struct SocketAccess {
  std::optional<gid_t> group;
};

// Throws UserError naming what is wrong (missing option, address in use...).
// Listening inet sockets without a host bind 127.0.0.1, not every address.
std::unique_ptr<Port> make_port(EventLoop& loop, Network& net, const PortSpec& spec,
                                const SocketAccess& access = {});

// Sets the mode (and group) of a unix socket file the engine just bound.
void apply_socket_access(const std::string& path, const SocketAccess& access);

}  // namespace vnet
