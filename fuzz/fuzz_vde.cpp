// The VDE control messages a plug (request) or a switch (reply) sends: any
// bytes either parse into a bounded, absolute, NUL-free path and printable
// description, or fail with a named error; what parses survives a re-emit.
#include <cstddef>
#include <cstdint>

#include "wire/vde.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vnet::wire;
  const Bytes input(data, size);
  const auto request = parse_vde_request(input);
  if (request.ok()) {
    const auto& r = request.request;
    if (r.socket_path.empty() || r.socket_path[0] != '/' || r.socket_path.size() >= kVdePathMax) __builtin_trap();
    if (r.socket_path.find('\0') != std::string::npos) __builtin_trap();
    if (r.description.size() > kVdeDescriptionMax) __builtin_trap();
    for (char c : r.description)
      if (c < 0x20 || c > 0x7e) __builtin_trap();
    const auto again = parse_vde_request(emit_vde_request(r.socket_path, r.description, r.port_wish));
    if (!again.ok() || again.request.socket_path != r.socket_path || again.request.port_wish != r.port_wish)
      __builtin_trap();
  }
  const auto reply = parse_vde_reply(input);
  if (reply.ok()) {
    const auto again = parse_vde_reply(emit_vde_reply(reply.socket_path));
    if (!again.ok() || again.socket_path != reply.socket_path) __builtin_trap();
  }
  return 0;
}
