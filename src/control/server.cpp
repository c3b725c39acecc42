#include "control/server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "control/request.hpp"
#include "core/error.hpp"
#include "core/sockaddr.hpp"
#include "ports/pcap.hpp"

namespace vnet {

ControlServer::ControlServer(Engine& engine, const std::string& socket_path)
    : engine_(engine), path_(socket_path), owner_uid_(::geteuid()) {
  SockAddr addr = SockAddr::unix_path(path_);
  listen_fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_fd_) throw UserError(errno_text("socket"));
  ::unlink(path_.c_str());
  // Only the owner may drive the engine: the file never exists with more than
  // 0600, whatever the umask, and its mode is then set explicitly.
  mode_t old = ::umask(0177);
  int rc = ::bind(listen_fd_.get(), addr.get(), addr.length);
  ::umask(old);
  if (rc != 0) throw UserError(errno_text("cannot create control socket " + path_));
  if (::chmod(path_.c_str(), 0600) != 0) throw UserError(errno_text("cannot set the mode of " + path_));
  if (::listen(listen_fd_.get(), 16) != 0) throw UserError(errno_text("listen " + path_));
  start_serving();
}

ControlServer::ControlServer(Engine& engine, const std::string& socket_path, UniqueFd listening)
    : engine_(engine), path_(socket_path), owner_uid_(::geteuid()), listen_fd_(std::move(listening)),
      owns_socket_file_(false) {
  // The manager's SocketMode= decides the file's mode (systemd's default is
  // 0666); other users are refused per connection either way, but say so.
  struct stat st{};
  if (::stat(path_.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
    log::warn("control socket {} has mode {:04o}: other users can connect (they are refused); set SocketMode=0600 "
              "in the .socket unit", path_, st.st_mode & 07777);
  log::info("control socket {} passed by the service manager", path_);
  start_serving();
}

void ControlServer::start_serving() {
  spare_fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  engine_.loop().add(listen_fd_.get(), EPOLLIN, [this](std::uint32_t) { accept_clients(); });
  pause_ = std::make_unique<AcceptPause>(engine_.loop(), listen_fd_.get(), "control socket");
}

ControlServer::~ControlServer() {
  for (auto& c : clients_) engine_.loop().remove(c->fd.get());
  engine_.loop().remove(listen_fd_.get());
  if (owns_socket_file_) ::unlink(path_.c_str());
}

UniqueFd ControlServer::accept_client() {
  UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!fd && (errno == EMFILE || errno == ENFILE) && spare_fd_) {
    spare_fd_.reset();
    fd.reset(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) errno = EMFILE;
  }
  return fd;
}

void ControlServer::accept_clients() {
  for (;;) {
    UniqueFd fd = accept_client();
    if (!fd) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      pause_->pause_if_exhausted(errno);
      return;
    }
    if (!peer_allowed(fd.get())) continue;
    int raw = fd.get();
    clients_.push_back(std::make_unique<Client>(Client{std::move(fd), {}, {}}));
    engine_.loop().add(raw, EPOLLIN, [this, raw](std::uint32_t events) { on_client(raw, events); });
  }
}

bool ControlServer::peer_allowed(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  if (cred.uid == owner_uid_ || cred.uid == 0) return true;
  engine_.host().control_refused++;
  refused_log_.warn("control: refused a connection from uid {} (pid {}): only uid {} and root may use this engine",
                    cred.uid, cred.pid, owner_uid_);
  return false;
}

ControlServer::Client* ControlServer::find(int fd) {
  auto it = std::find_if(clients_.begin(), clients_.end(), [fd](auto& c) { return c->fd.get() == fd; });
  return it == clients_.end() ? nullptr : it->get();
}

void ControlServer::on_client(int fd, std::uint32_t events) {
  Client* client = find(fd);
  if (!client) return;
  if ((events & EPOLLOUT) && !flush(*client)) {
    drop(fd);
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    bool keep = true;
    read_requests(*client, keep);
    if (!keep) return;
  }
  watch(*client);
}

void ControlServer::read_requests(Client& client, bool& keep) {
  const int fd = client.fd.get();
  char buf[16384];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    keep = false;
    drop(fd);
    return;
  }
  if (n < 0) return;
  client.in.append(buf, static_cast<std::size_t>(n));
  std::size_t start = 0;
  for (std::size_t nl; keep && (nl = client.in.find('\n', start)) != std::string::npos; start = nl + 1)
    handle_line(client, std::string_view(client.in).substr(start, nl - start), keep);
  if (!keep) return;
  client.in.erase(0, start);
  if (client.in.size() > kMaxLine) {
    queue_reply(client, {{"ok", false}, {"error", "request line longer than 64 KiB"}});
    keep = false;
    drop(fd);
    return;
  }
  if (!flush(client)) {
    keep = false;
    drop(fd);
    return;
  }
  if (client.out.size() > kMaxPendingOutput) {
    engine_.host().control_over_cap++;
    over_cap_log_.warn("control: dropped a client that left {} bytes of replies unread", client.out.size());
    keep = false;
    drop(fd);
  }
}

void ControlServer::handle_line(Client& client, std::string_view line, bool& keep) {
  const int fd = client.fd.get();
  nlohmann::json request;
  nlohmann::json response = handle_request_line(engine_, line, &request);
  queue_reply(client, response);
  if (!response.value("ok", false)) return;
  const std::string cmd = request.value("cmd", "");
  if (cmd == "shutdown") {
    log::info("shutdown requested");
    flush(client);
    engine_.loop().stop();
  } else if (cmd == "capture") {
    // The connection now carries pcap; the capture port owns it. Replies the
    // client has not read yet would be mixed into the pcap stream: refuse.
    keep = false;
    if (!flush(client) || !client.out.empty()) {
      log::warn("control: capture client did not read its earlier replies; closing it");
      drop(fd);
      return;
    }
    Network& net = engine_.network(request.value("net", ""));
    engine_.loop().remove(fd);
    UniqueFd owned(client.fd.release());
    std::erase_if(clients_, [&client](auto& c) { return c.get() == &client; });
    if (!spare_fd_) spare_fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    auto port = std::make_unique<PcapPort>(engine_.loop(), net, net.next_port_id(), std::move(owned), "live capture");
    port->set_spec("capture");
    log::info("{}: live capture started as port {}", net.name(), port->id());
    net.add_port(std::move(port));
  }
}

void ControlServer::queue_reply(Client& client, const nlohmann::json& response) {
  client.out += response.dump();
  client.out += '\n';
}

bool ControlServer::flush(Client& client) {
  std::size_t at = 0;
  while (at < client.out.size()) {
    ssize_t n = ::send(client.fd.get(), client.out.data() + at, client.out.size() - at, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      at += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return false;
  }
  client.out.erase(0, at);
  return true;
}

void ControlServer::watch(Client& client) {
  engine_.loop().modify(client.fd.get(), client.out.empty() ? EPOLLIN : EPOLLIN | EPOLLOUT);
}

void ControlServer::drop(int fd) {
  auto it = std::find_if(clients_.begin(), clients_.end(), [fd](auto& c) { return c->fd.get() == fd; });
  if (it == clients_.end()) return;
  if ((*it)->fd) engine_.loop().remove(fd);
  clients_.erase(it);
  if (!spare_fd_) spare_fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
}

}  // namespace vnet
