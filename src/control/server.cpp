#include "control/server.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>

#include "control/request.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "ports/pcap.hpp"
#include "core/sockaddr.hpp"

namespace vnet {

ControlServer::ControlServer(Engine& engine, const std::string& socket_path) : engine_(engine), path_(socket_path) {
  SockAddr addr = SockAddr::unix_path(path_);
  listen_fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_fd_) throw UserError(errno_text("socket"));
  ::unlink(path_.c_str());
  // Only the owner may drive the engine.
  mode_t old = ::umask(0177);
  int rc = ::bind(listen_fd_.get(), addr.get(), addr.length);
  ::umask(old);
  if (rc != 0) throw UserError(errno_text("cannot create control socket " + path_));
  if (::listen(listen_fd_.get(), 16) != 0) throw UserError(errno_text("listen " + path_));
  engine_.loop().add(listen_fd_.get(), EPOLLIN, [this](std::uint32_t) { accept_clients(); });
}

ControlServer::~ControlServer() {
  for (auto& c : clients_) engine_.loop().remove(c->fd.get());
  engine_.loop().remove(listen_fd_.get());
  ::unlink(path_.c_str());
}

void ControlServer::accept_clients() {
  for (;;) {
    UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;
    int raw = fd.get();
    clients_.push_back(std::make_unique<Client>(Client{std::move(fd), {}}));
    engine_.loop().add(raw, EPOLLIN, [this, raw](std::uint32_t) { on_client(raw); });
  }
}

void ControlServer::on_client(int fd) {
  auto it = std::find_if(clients_.begin(), clients_.end(), [fd](auto& c) { return c->fd.get() == fd; });
  if (it == clients_.end()) return;
  Client& client = **it;
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    drop(fd);
    return;
  }
  if (n < 0) return;
  client.in.append(buf, static_cast<std::size_t>(n));
  bool keep = true;
  std::size_t start = 0;
  for (std::size_t nl; keep && (nl = client.in.find('\n', start)) != std::string::npos; start = nl + 1)
    handle_line(client, std::string_view(client.in).substr(start, nl - start), keep);
  if (!keep) return;
  client.in.erase(0, start);
  if (client.in.size() > kMaxLine) {
    reply(fd, {{"ok", false}, {"error", "request line longer than 64 KiB"}});
    drop(fd);
  }
}

void ControlServer::handle_line(Client& client, std::string_view line, bool& keep) {
  const int fd = client.fd.get();
  nlohmann::json request;
  nlohmann::json response = handle_request_line(engine_, line, &request);
  reply(fd, response);
  if (!response.value("ok", false)) return;
  const std::string cmd = request.value("cmd", "");
  if (cmd == "shutdown") {
    log::info("shutdown requested");
    engine_.loop().stop();
  } else if (cmd == "capture") {
    // The connection now carries pcap; the capture port owns it.
    Network& net = engine_.network(request.value("net", ""));
    engine_.loop().remove(fd);
    UniqueFd owned(client.fd.release());
    drop(fd);
    auto port = std::make_unique<PcapPort>(engine_.loop(), net, net.next_port_id(), std::move(owned), "live capture");
    port->set_spec("capture");
    log::info("{}: live capture started as port {}", net.name(), port->id());
    net.add_port(std::move(port));
    keep = false;
  }
}

void ControlServer::drop(int fd) {
  auto it = std::find_if(clients_.begin(), clients_.end(), [fd](auto& c) { return c->fd.get() == fd; });
  if (it == clients_.end()) return;
  if ((*it)->fd) engine_.loop().remove(fd);
  clients_.erase(it);
}

void ControlServer::reply(int fd, const nlohmann::json& response) {
  std::string line = response.dump() + "\n";
  std::size_t at = 0;
  // Replies are small; a client that does not read them is waited for briefly, then abandoned.
  while (at < line.size()) {
    ssize_t n = ::send(fd, line.data() + at, line.size() - at, MSG_NOSIGNAL);
    if (n > 0) {
      at += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 1000) > 0) continue;
    }
    return;
  }
}

}  // namespace vnet
