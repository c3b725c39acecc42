// One control request line against a live engine model (no sockets opened:
// specs that would open one are still parsed, then fail or succeed cleanly).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "control/request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  vnet::EventLoop loop;
  vnet::Engine engine(loop);
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // Lines are tried in order, so a net_add can be followed by port_set etc.
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    // Keep the fuzzer away from opening real sockets, devices and files.
    if (line.find("port_add") == std::string_view::npos) {
      auto reply = vnet::handle_request_line(engine, line);
      if (!reply.contains("ok")) __builtin_trap();
    }
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return 0;
}
