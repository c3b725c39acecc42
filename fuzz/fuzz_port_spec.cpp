// Port specs come from any local process that can reach the control socket.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.hpp"
#include "ports/spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto spec = vnet::parse_port_spec(text);
    // What was accepted must survive its own printing.
    auto again = vnet::parse_port_spec(spec.to_string());
    if (again.options != spec.options || again.kind != spec.kind) __builtin_trap();
  } catch (const vnet::UserError&) {
  }
  return 0;
}
