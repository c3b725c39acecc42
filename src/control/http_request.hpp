// One HTTP/1.x request as `vnet ui` reads it from a browser on loopback:
// the request line, the few headers it uses (Host, the page's token,
// Content-Length) and a bounded body. Whatever reaches the port may send
// anything, so parsing is strict and bounded: a head over kMaxHead bytes,
// a body over kMaxBody, a malformed line or length is an error, never a
// guess.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace vnet {

struct HttpRequest {
  static constexpr std::size_t kMaxHead = 8192;
  static constexpr std::size_t kMaxBody = 4096;

  enum class Status { Complete, NeedMore, Bad };
  Status status = Status::NeedMore;
  std::string method;
  std::string path;   // the target without its query
  std::string query;  // after '?', or empty
  std::string host;
  std::string token;  // X-Vnet-Token
  std::string body;
};

// Parses what has arrived so far: NeedMore until the head (and the body its
// Content-Length announces) is complete.
HttpRequest parse_http_request(std::string_view raw);

// The value of `key` in a query string "a=1&token=xyz" (no decoding: the
// values vnet uses are hex), or nullopt.
std::optional<std::string> query_value(std::string_view query, std::string_view key);

}  // namespace vnet
