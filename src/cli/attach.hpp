// What a user pastes to start one more guest on a network: QEMU options or a
// libvirt <interface> element, from the engine's answer to an attach request
// (a fresh MAC and the listener to connect to).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace vnet::cli {

enum class AttachFormat { Qemu, Libvirt };

// Throws UserError for a form the listener cannot be given in.
std::string attach_text(const nlohmann::json& reply, AttachFormat format);

}  // namespace vnet::cli
