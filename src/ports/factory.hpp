// Turns a parsed PortSpec into a live port of the right transport.
#pragma once

#include <memory>

#include "fabric/network.hpp"
#include "ports/spec.hpp"

namespace vnet {

// Throws UserError naming what is wrong (missing option, address in use...).
std::unique_ptr<Port> make_port(EventLoop& loop, Network& net, const PortSpec& spec);

}  // namespace vnet
