#include "control/http_request.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "control/metrics.hpp"

namespace vnet {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

HttpRequest bad() {
  HttpRequest r;
  r.status = HttpRequest::Status::Bad;
  return r;
}

}  // namespace

HttpRequest parse_http_request(std::string_view raw) {
  HttpRequest r;
  const std::size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return raw.size() > HttpRequest::kMaxHead ? bad() : r;
  if (head_end + 4 > HttpRequest::kMaxHead) return bad();
  const auto line = parse_http_request_line(raw.substr(0, head_end + 2));
  if (!line) return bad();
  r.method = line->method;
  const std::string_view target = line->target;
  const std::size_t q = target.find('?');
  r.path = target.substr(0, q);
  if (q != std::string_view::npos) r.query = target.substr(q + 1);

  std::size_t content_length = 0;
  bool have_length = false;
  std::string_view headers = raw.substr(0, head_end + 2);
  headers.remove_prefix(headers.find("\r\n") + 2);
  while (!headers.empty()) {
    const std::size_t eol = headers.find("\r\n");
    const std::string_view field = headers.substr(0, eol);
    headers.remove_prefix(eol + 2);
    const std::size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) return bad();
    const std::string_view name = field.substr(0, colon), value = trim(field.substr(colon + 1));
    if (iequals(name, "Host")) {
      r.host = value;
    } else if (iequals(name, "X-Vnet-Token")) {
      r.token = value;
    } else if (iequals(name, "Content-Length")) {
      if (have_length) return bad();  // two lengths: a smuggling attempt or a broken client
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), content_length);
      if (ec != std::errc{} || p != value.data() + value.size() || content_length > HttpRequest::kMaxBody) return bad();
      have_length = true;
    } else if (iequals(name, "Transfer-Encoding")) {
      return bad();  // chunked bodies are not accepted: the page sends Content-Length
    }
  }
  const std::string_view body = raw.substr(head_end + 4);
  if (body.size() < content_length) return r;
  if (body.size() > content_length) return bad();  // one request per connection
  r.body = body;
  r.status = HttpRequest::Status::Complete;
  return r;
}

std::optional<std::string> query_value(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    const std::size_t eq = item.find('=');
    if (eq != std::string_view::npos && item.substr(0, eq) == key) return std::string(item.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

}  // namespace vnet
