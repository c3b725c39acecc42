// Forward rules come from any local process that can reach the control
// socket, and from config files.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.hpp"
#include "nat/portfwd.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto rule = vnet::nat::parse_forward_rule(text);
    if (rule.host_port == 0 || rule.guest_port == 0 || rule.name.empty()) __builtin_trap();
    // The canonical form parses back to the same rule.
    auto again = vnet::nat::parse_forward_rule(rule.to_string());
    if (again.proto != rule.proto || again.host_addr != rule.host_addr || again.host_port != rule.host_port ||
        again.guest_addr != rule.guest_addr || again.guest_port != rule.guest_port)
      __builtin_trap();
  } catch (const vnet::UserError&) {
  }
  return 0;
}
