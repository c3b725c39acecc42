// The `vnet ui` request parser: any bytes give NeedMore, Bad or a Complete
// request whose pieces respect the bounds (head and body sizes, a path
// starting with '/'), and feeding the same bytes in two pieces never turns
// a complete request into anything else.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "control/http_request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using vnet::HttpRequest;
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  const auto r = vnet::parse_http_request(raw);
  if (r.status == HttpRequest::Status::Complete) {
    if (r.path.empty() || r.path[0] != '/' || r.body.size() > HttpRequest::kMaxBody) __builtin_trap();
    if (raw.size() > HttpRequest::kMaxHead + HttpRequest::kMaxBody) __builtin_trap();
    // Any prefix of a complete request is incomplete, or bad only if the head was.
    const auto half = vnet::parse_http_request(raw.substr(0, size / 2));
    if (half.status == HttpRequest::Status::Complete && size / 2 != size) __builtin_trap();
  }
  vnet::query_value(r.query, "token");
  return 0;
}
