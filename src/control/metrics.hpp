// Metrics in the Prometheus text exposition format (version 0.0.4), for
// `vnet metrics` and the optional loopback HTTP listener (`vnet up
// --metrics 127.0.0.1:9477`, GET /metrics). Everything is derived from the
// status snapshot, so a counter added to status is exported without an edit
// here: per port frames, bytes and drops by cause; per NAT network flows by
// protocol, drops and events by cause, leases by state, forward connections.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "core/clock.hpp"
#include "core/event_loop.hpp"
#include "core/fd.hpp"

namespace vnet {

class Engine;

std::string render_metrics(const nlohmann::json& status);
std::string render_engine_metrics(const Engine& engine);

// The request line of an HTTP/1.x request ("GET /metrics HTTP/1.1"), read
// from a buffer that holds at least the full header block.
struct HttpRequestLine {
  std::string_view method;
  std::string_view target;
};
// nullopt for anything that is not METHOD SP TARGET SP HTTP/1.x CRLF with
// printable, bounded fields.
std::optional<HttpRequestLine> parse_http_request_line(std::string_view head);
// The whole response to one request: 200 with the metrics for GET (or HEAD)
// /metrics, 404, 405 or 400 otherwise; always "Connection: close".
std::string http_response(std::string_view head, const std::function<std::string()>& metrics);

// A loopback-only HTTP listener serving /metrics, one request per connection.
class MetricsServer {
 public:
  // addr: "127.0.0.1:PORT" or "[::1]:PORT"; anything else is refused (the
  // metrics name guests' addresses and MACs).
  MetricsServer(EventLoop& loop, const Engine& engine, const std::string& addr);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  std::string address() const { return address_; }

 private:
  struct Client {
    UniqueFd fd;
    std::string in, out;
    std::size_t sent = 0;
    Nanos since = 0;
  };
  void on_accept();
  void on_client(int fd, std::uint32_t events);
  void drop(int fd);
  void sweep();

  EventLoop& loop_;
  const Engine& engine_;
  UniqueFd listen_fd_;
  std::string address_;
  std::deque<Client> clients_;
  Timer sweep_timer_;
};

}  // namespace vnet
