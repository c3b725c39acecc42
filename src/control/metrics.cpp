#include "control/metrics.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "control/engine.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/sockaddr.hpp"

namespace vnet {

using nlohmann::json;

namespace {

// One metric family: HELP and TYPE once, then its samples.
class Family {
 public:
  Family(std::string name, std::string type, std::string help)
      : name_(std::move(name)), type_(std::move(type)), help_(std::move(help)) {}
  void add(const std::vector<std::pair<std::string, std::string>>& labels, double value) {
    std::string line = name_;
    if (!labels.empty()) {
      line += '{';
      for (std::size_t i = 0; i < labels.size(); ++i) {
        line += (i ? "," : "") + labels[i].first + "=\"" + escape(labels[i].second) + "\"";
      }
      line += '}';
    }
    char num[32];
    std::snprintf(num, sizeof num, "%.17g", value);
    samples_ += line + " " + num + "\n";
  }
  void write(std::string& out) const {
    if (samples_.empty()) return;
    out += "# HELP " + name_ + " " + help_ + "\n# TYPE " + name_ + " " + type_ + "\n" + samples_;
  }

 private:
  static std::string escape(const std::string& v) {
    std::string out;
    for (char c : v) {
      if (c == '\\' || c == '"') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    return out;
  }
  std::string name_, type_, help_, samples_;
};

double number(const json& j) { return j.is_number() ? j.get<double>() : 0.0; }

std::size_t list_size(const json& j) {
  if (j.is_array()) return j.size();
  return 0;
}

}  // namespace

std::string render_metrics(const json& status) {
  Family rx_frames("vnet_port_rx_frames_total", "counter", "Frames received from the port's peer.");
  Family rx_bytes("vnet_port_rx_bytes_total", "counter", "Bytes received from the port's peer.");
  Family tx_frames("vnet_port_tx_frames_total", "counter", "Frames sent to the port's peer.");
  Family tx_bytes("vnet_port_tx_bytes_total", "counter", "Bytes sent to the port's peer.");
  Family drops("vnet_port_drops_total", "counter", "Frames a port dropped, by cause.");
  Family effects("vnet_port_impairment_frames_total", "counter",
                 "Frames an impairment acted on, by effect (lost, duplicated, reordered, delayed, shaped, queue_drop).");
  Family link("vnet_port_link_up", "gauge", "1 if the port's link is up.");
  Family macs("vnet_network_macs", "gauge", "MAC addresses the network has learned.");
  Family ports("vnet_network_ports", "gauge", "Ports of the network.");
  Family flows("vnet_nat_flows", "gauge", "Open NAT flows by protocol (lists are capped in status at 1000).");
  Family flows_created("vnet_nat_flows_created_total", "counter", "NAT flows opened since start, by protocol.");
  Family nat_drops("vnet_nat_drops_total", "counter", "Packets the NAT dropped, by cause.");
  Family nat_events("vnet_nat_events_total", "counter", "NAT events (DHCP, DNS, ICMP, TFTP, TCP), by kind.");
  Family leases("vnet_nat_leases", "gauge", "DHCP leases by state (bound, offered, declined).");
  Family fwd("vnet_nat_forward_connections_total", "counter",
             "Connections (tcp) or datagrams (udp) a port forward carried.");
  Family sndbuf("vnet_nat_sndbuf_bytes", "gauge", "Host send-buffer bytes the NAT's flows hold.");
  Family control("vnet_control_connections_total", "counter",
                 "Control connections refused (another user) or dropped (unread replies).");

  for (const auto& net : status.value("networks", json::array())) {
    const std::string name = net.value("name", "");
    ports.add({{"network", name}}, static_cast<double>(list_size(net.value("ports", json::array()))));
    macs.add({{"network", name}},
             static_cast<double>(list_size(net.value("macs", json::array()))) + number(net.value("macs_truncated", json(0))));
    for (const auto& port : net.value("ports", json::array())) {
      const std::vector<std::pair<std::string, std::string>> id = {
          {"network", name}, {"port", std::to_string(port.value("id", 0))}, {"kind", port.value("kind", "")}};
      const json c = port.value("counters", json::object());
      rx_frames.add(id, number(c.value("rx_frames", json(0))));
      rx_bytes.add(id, number(c.value("rx_bytes", json(0))));
      tx_frames.add(id, number(c.value("tx_frames", json(0))));
      tx_bytes.add(id, number(c.value("tx_bytes", json(0))));
      link.add(id, port.value("link", "") == "up" ? 1 : 0);
      for (const auto& [key, value] : c.items()) {
        auto labelled = [&](const char* label, std::string cause) {
          auto l = id;
          l.emplace_back(label, std::move(cause));
          return l;
        };
        if (key.rfind("drop_", 0) == 0) drops.add(labelled("cause", key.substr(5)), number(value));
        else if (key == "mac_limit") drops.add(labelled("cause", "mac_limit"), number(value));
        else if (key.rfind("imp_", 0) == 0) effects.add(labelled("effect", key.substr(4)), number(value));
      }
    }
    const json& nat = net.contains("nat") ? net["nat"] : json();
    if (!nat.is_object()) continue;
    const json counters = nat.value("counters", json::object());
    flows.add({{"network", name}, {"proto", "tcp"}}, static_cast<double>(list_size(nat.value("tcp", json()))));
    flows.add({{"network", name}, {"proto", "udp"}}, static_cast<double>(list_size(nat.value("udp", json()))));
    for (const auto& [key, value] : counters.items()) {
      if (key == "tcp_flows" || key == "udp_flows")
        flows_created.add({{"network", name}, {"proto", key.substr(0, 3)}}, number(value));
      else if (key.rfind("drop_", 0) == 0)
        nat_drops.add({{"network", name}, {"cause", key.substr(5)}}, number(value));
      else
        nat_events.add({{"network", name}, {"event", key}}, number(value));
    }
    std::map<std::string, double> by_state = {{"bound", 0}, {"offered", 0}, {"declined", 0}};
    for (const auto& l : nat.value("leases", json::array())) by_state[l.value("state", "other")] += 1;
    for (const auto& [state, n] : by_state) leases.add({{"network", name}, {"state", state}}, n);
    for (const auto& f : nat.value("forwards", json::array())) {
      const std::string proto = f.value("proto", "");
      fwd.add({{"network", name}, {"forward", f.value("name", "")}, {"proto", proto}},
              number(f.value(proto == "tcp" ? "connections" : "datagrams", json(0))));
    }
    if (const json fl = nat.value("flows", json::object()); fl.contains("sndbuf_in_use"))
      sndbuf.add({{"network", name}}, number(fl["sndbuf_in_use"]));
  }
  const json host = status.value("host", json::object());
  control.add({{"result", "refused"}}, number(host.value("control_refused", json(0))));
  control.add({{"result", "over_cap"}}, number(host.value("control_over_cap", json(0))));

  std::string out;
  for (const Family* f : {&rx_frames, &rx_bytes, &tx_frames, &tx_bytes, &drops, &effects, &link, &ports, &macs,
                          &flows, &flows_created, &nat_drops, &nat_events, &leases, &fwd, &sndbuf, &control})
    f->write(out);
  return out;
}

std::string render_engine_metrics(const Engine& engine) { return render_metrics(engine.status()); }

namespace {

constexpr std::size_t kMaxHead = 8192;      // request line + headers we read before answering
constexpr std::size_t kMaxClients = 16;     // concurrent scrapers; the oldest goes first
constexpr Nanos kClientTimeout = 5 * kSeconds;

bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

}  // namespace

std::optional<HttpRequestLine> parse_http_request_line(std::string_view head) {
  const std::size_t eol = head.find("\r\n");
  if (eol == std::string_view::npos || eol > 2048) return std::nullopt;
  const std::string_view line = head.substr(0, eol);
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return std::nullopt;
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) return std::nullopt;
  HttpRequestLine r{line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1)};
  const std::string_view version = line.substr(sp2 + 1);
  if (r.method.empty() || r.method.size() > 16 || r.target.empty() || r.target[0] != '/' || !printable(r.method) ||
      !printable(r.target) || (version != "HTTP/1.0" && version != "HTTP/1.1"))
    return std::nullopt;
  return r;
}

std::string http_response(std::string_view head, const std::function<std::string()>& metrics) {
  auto reply = [](const char* status, const std::string& type, const std::string& body, bool with_body = true) {
    return std::string("HTTP/1.1 ") + status + "\r\nContent-Type: " + type +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
           (with_body ? body : "");
  };
  auto req = parse_http_request_line(head);
  if (!req) return reply("400 Bad Request", "text/plain", "bad request\n");
  const std::string_view path = req->target.substr(0, req->target.find('?'));
  if (path != "/metrics") return reply("404 Not Found", "text/plain", "only /metrics is served here\n");
  if (req->method != "GET" && req->method != "HEAD")
    return reply("405 Method Not Allowed", "text/plain", "use GET\n");
  return reply("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics(), req->method == "GET");
}

MetricsServer::MetricsServer(EventLoop& loop, const Engine& engine, const std::string& addr)
    : loop_(loop), engine_(engine), sweep_timer_(loop, [this] { sweep(); }) {
  SockAddr sa = SockAddr::inet_hostport(addr, true);
  auto ip = sa.ip();
  const bool loopback =
      ip && ((sa.family() == AF_INET && (reinterpret_cast<const sockaddr_in*>(sa.get())->sin_addr.s_addr & htonl(0xff000000)) ==
                                            htonl(0x7f000000)) ||
             (sa.family() == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(sa.get())->sin6_addr)));
  if (!loopback)
    throw UserError("--metrics " + addr + ": expected a loopback address and port, e.g. 127.0.0.1:9477 (the metrics "
                    "name guests' addresses; put a proxy in front to publish them)");
  listen_fd_.reset(::socket(sa.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_fd_) throw UserError(errno_text("--metrics socket"));
  int one = 1;
  ::setsockopt(listen_fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listen_fd_.get(), sa.get(), sa.length) != 0) throw UserError(errno_text("--metrics cannot bind " + addr));
  if (::listen(listen_fd_.get(), 16) != 0) throw UserError(errno_text("--metrics listen " + addr));
  SockAddr bound;
  bound.length = sizeof bound.storage;
  ::getsockname(listen_fd_.get(), bound.get(), &bound.length);
  address_ = bound.to_string();
  loop_.add(listen_fd_.get(), EPOLLIN, [this](std::uint32_t) { on_accept(); });
  log::info("metrics served at http://{}/metrics", address_);
}

MetricsServer::~MetricsServer() {
  for (auto& c : clients_) loop_.remove(c.fd.get());
  if (listen_fd_) loop_.remove(listen_fd_.get());
}

void MetricsServer::on_accept() {
  for (;;) {
    UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;
    if (clients_.size() >= kMaxClients) drop(clients_.front().fd.get());
    const int raw = fd.get();
    clients_.push_back(Client{std::move(fd), {}, {}, 0, monotonic_now()});
    loop_.add(raw, EPOLLIN, [this, raw](std::uint32_t events) { on_client(raw, events); });
    if (!sweep_timer_.armed()) sweep_timer_.arm_in(kSeconds);
  }
}

void MetricsServer::on_client(int fd, std::uint32_t events) {
  auto it = std::find_if(clients_.begin(), clients_.end(), [fd](const Client& c) { return c.fd.get() == fd; });
  if (it == clients_.end()) return;
  Client& c = *it;
  if (c.out.empty() && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
    char buf[2048];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      drop(fd);
      return;
    }
    c.in.append(buf, static_cast<std::size_t>(n));
    const bool complete = c.in.find("\r\n\r\n") != std::string::npos;
    if (!complete && c.in.size() < kMaxHead) return;
    c.out = http_response(complete ? std::string_view(c.in) : std::string_view(), [this] { return render_engine_metrics(engine_); });
    loop_.modify(fd, EPOLLOUT);
  }
  while (c.sent < c.out.size()) {
    const ssize_t n = ::send(fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN) return;
      break;
    }
    c.sent += static_cast<std::size_t>(n);
  }
  drop(fd);
}

void MetricsServer::drop(int fd) {
  auto it = std::find_if(clients_.begin(), clients_.end(), [fd](const Client& c) { return c.fd.get() == fd; });
  if (it == clients_.end()) return;
  loop_.remove(fd);
  clients_.erase(it);
}

void MetricsServer::sweep() {
  const Nanos now = monotonic_now();
  while (!clients_.empty() && now - clients_.front().since > kClientTimeout) drop(clients_.front().fd.get());
  if (!clients_.empty()) sweep_timer_.arm_in(kSeconds);
}

}  // namespace vnet
