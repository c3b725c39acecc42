// Requests to the privileged helper come from the engine, which a hostile
// guest may have taken over: the parser must refuse anything malformed and
// what it accepts must satisfy the field rules and survive re-encoding.
#include <cstddef>
#include <cstdint>
#include <span>

#include "privsep/helper.hpp"
#include "privsep/request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vnet::privsep;
  std::string why;
  auto request = parse_request({data, size}, why);
  if (!request) return 0;
  if (encode(*request) != std::vector<std::uint8_t>(data, data + size)) __builtin_trap();
  if (request->op == Op::BindUnix || request->op == Op::CreateFile || request->op == Op::ConnectDgram ||
      request->op == Op::OpenDir) {
    if (!valid_absolute_path(request->a, kMaxMessage) || request->a.find("/../") != std::string::npos)
      __builtin_trap();
    // The path rule must never let a path escape the run dir by spelling.
    static const HelperPolicy policy = make_policy("/run/vnet", {});
    if (!refuse_path(policy, request->a) && request->a.rfind("/run/vnet/", 0) != 0) __builtin_trap();
  }
  if (request->op == Op::OpenTap && (!valid_ifname(request->a) || request->a.find('/') != std::string::npos))
    __builtin_trap();
  if (request->op == Op::BindInet) {
    const auto port = parse_low_port(request->b);
    if (!port || *port == 0 || *port >= 1024 || !valid_numeric_address(request->a)) __builtin_trap();
  }
  // Kernel network requests: interface names only, addresses IPv4 with a prefix.
  if (request->op >= Op::OpenPacket && !valid_ifname(request->a)) __builtin_trap();
  if (request->op == Op::SetAddress && !valid_interface_address(request->b)) __builtin_trap();
  if (request->op == Op::KernelNatUp && !valid_interface_address(request->b.substr(0, request->b.find(' '))))
    __builtin_trap();
  parse_reply({data, size});
  return 0;
}
