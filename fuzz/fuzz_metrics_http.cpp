// The metrics listener reads HTTP requests from whoever connects to its
// loopback port: any bytes must give one well-formed response, 200 only for
// GET or HEAD /metrics.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "control/metrics.hpp"
#include "fuzz_sink.hpp"

using vnet::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view head(reinterpret_cast<const char*>(data), size);
  const std::string response = vnet::http_response(head, [] { return std::string("vnet_up 1\n"); });
  check(response.rfind("HTTP/1.1 ", 0) == 0);
  check(response.find("\r\nConnection: close\r\n\r\n") != std::string::npos);
  const bool ok = response.rfind("HTTP/1.1 200 ", 0) == 0;
  auto line = vnet::parse_http_request_line(head);
  check(!ok || (line && (line->method == "GET" || line->method == "HEAD") &&
                line->target.substr(0, line->target.find('?')) == "/metrics"));
  return 0;
}
