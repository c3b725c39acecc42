#include "cli/ui.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/client.hpp"
#include "control/http_request.hpp"
#include "core/error.hpp"
#include "core/fd.hpp"
#include "core/sockaddr.hpp"

namespace vnet::cli {
namespace {

using nlohmann::json;

volatile std::sig_atomic_t g_stop = 0;  // set by SIGINT/SIGTERM only

std::string random_token() {
  unsigned char bytes[16];
  if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) throw UserError(errno_text("getrandom"));
  std::string out;
  for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

bool is_loopback(const SockAddr& sa) {
  if (sa.family() == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in*>(sa.get())->sin_addr.s_addr) >> 24) == 127;
  return sa.family() == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(sa.get())->sin6_addr);
}

std::string response(const char* status, const char* type, const std::string& body) {
  // The page and its data are never cached, framed or sniffed.
  return fmt::format("HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n"
                     "X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\n"
                     "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                     "connect-src 'self'\r\nConnection: close\r\n\r\n{}",
                     status, type, body.size(), body);
}

std::string json_reply(const char* status, const json& body) {
  return response(status, "application/json", body.dump());
}

std::string error_reply(const char* status, const std::string& why) {
  return json_reply(status, {{"ok", false}, {"error", why}});
}

class UiServer {
 public:
  explicit UiServer(const UiOptions& options) : run_dir_(options.run_dir), token_(random_token()) {
    const SockAddr addr = SockAddr::inet_hostport(options.listen, true);
    if (!is_loopback(addr))
      throw UserError("--listen " + options.listen + ": expected a loopback address, e.g. 127.0.0.1:8090 (the page "
                      "controls your networks)");
    fd_.reset(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (!fd_ || ::bind(fd_.get(), addr.get(), addr.length) != 0 || ::listen(fd_.get(), 16) != 0)
      throw UserError(errno_text("cannot listen on " + options.listen));
    SockAddr bound;
    bound.length = sizeof bound.storage;
    ::getsockname(fd_.get(), bound.get(), &bound.length);
    host_ = bound.to_string();
    localhost_ = "localhost:" + std::to_string(bound.port());
  }

  std::string url() const { return "http://" + host_ + "/?token=" + token_; }

  void serve() {
    while (!g_stop) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 500) <= 0) continue;
      UniqueFd conn(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (conn) handle(conn.get());
    }
  }

 private:
  void handle(int fd) {
    // One request per connection, read with a deadline so a client that
    // sends nothing cannot hold the (single-threaded) server.
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    std::string raw;
    HttpRequest req;
    while (req.status == HttpRequest::Status::NeedMore) {
      char buf[2048];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return;
      raw.append(buf, static_cast<std::size_t>(n));
      req = parse_http_request(raw);
    }
    const std::string out = req.status == HttpRequest::Status::Bad ? error_reply("400 Bad Request", "bad request")
                                                                    : route(req);
    std::size_t sent = 0;
    while (sent < out.size()) {
      const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }

  std::string route(const HttpRequest& req) {
    if (req.host != host_ && req.host != localhost_)
      return error_reply("403 Forbidden", "unexpected Host header (open the URL vnet ui printed)");
    if (req.path == "/" || req.path == "/index.html") {
      if (req.method != "GET") return error_reply("405 Method Not Allowed", "use GET");
      if (query_value(req.query, "token") != token_)
        return response("403 Forbidden", "text/plain", "open the URL `vnet ui` printed (it carries the token)\n");
      return response("200 OK", "text/html; charset=utf-8", kUiPage);
    }
    if (req.token != token_) return error_reply("403 Forbidden", "missing or wrong X-Vnet-Token");
    try {
      if (req.path == "/api/status" && req.method == "GET") return ok({{"status", engine({{"cmd", "status"}})}});
      if (req.method != "POST") return error_reply("405 Method Not Allowed", "use POST");
      const json body = json::parse(req.body);
      if (req.path == "/api/port") {
        const std::string link = body.at("link").get<std::string>();
        if (link != "up" && link != "down") return error_reply("400 Bad Request", "link must be up or down");
        engine({{"cmd", "port_set"}, {"net", body.at("net")}, {"port", body.at("port").get<unsigned>()}, {"link", link}});
        return ok({});
      }
      if (req.path == "/api/pf/add") return ok(engine({{"cmd", "pf_add"}, {"net", body.at("net")}, {"rule", body.at("rule")}}));
      if (req.path == "/api/pf/del") return ok(engine({{"cmd", "pf_del"}, {"net", body.at("net")}, {"name", body.at("name")}}));
      return error_reply("404 Not Found", "no such page");
    } catch (const json::exception& e) {
      return error_reply("400 Bad Request", std::string("bad request body: ") + e.what());
    } catch (const UserError& e) {
      return error_reply("200 OK", e.what());  // the engine's answer, for the page to show
    }
  }

  // A fresh connection per request: the page outlives engine restarts.
  json engine(const json& request) {
    ControlClient client(run_dir_);
    json reply = client.call(request);
    reply.erase("ok");
    return reply;
  }

  static std::string ok(json body) {
    body["ok"] = true;
    return json_reply("200 OK", body);
  }

  std::string run_dir_;
  std::string token_;
  UniqueFd fd_;
  std::string host_, localhost_;
};

}  // namespace

int run_ui(const UiOptions& options) {
  ControlClient probe(options.run_dir);  // fails now, with its advice, if no engine runs
  UiServer server(options);
  struct sigaction sa{};
  sa.sa_handler = [](int) { g_stop = 1; };
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  fmt::print("vnet ui: open {}\n(loopback only; the token in the URL is the key: share it as you would the control "
             "socket. Ctrl-C stops.)\n",
             server.url());
  std::fflush(stdout);
  server.serve();
  return 0;
}

}  // namespace vnet::cli
