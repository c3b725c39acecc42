#include "ports/stream.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>

#include "core/error.hpp"
#include "core/log.hpp"
#include "fabric/network.hpp"
#include "privsep/helper.hpp"
#include "wire/bytes.hpp"

namespace vnet {
namespace {

constexpr Nanos kFirstBackoff = 100 * kMillis;
constexpr Nanos kMaxBackoff = 5 * kSeconds;

void tune_stream_socket(int fd, int family) {
  if (family == AF_INET || family == AF_INET6) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
}

}  // namespace

bool connected_by_helper(UniqueFd& fd, const SockAddr& remote) {
  if (remote.family() != AF_UNIX || !privsep::broker()) return false;
  try {
    fd = privsep::broker()->connect_unix(reinterpret_cast<const sockaddr_un*>(&remote.storage)->sun_path);
    return true;
  } catch (const UserError& e) {
    errno = EACCES;  // reported, and retried, as the engine's own connect would be
    return false;
  }
}

StreamPort::StreamPort(EventLoop& loop, Network& net, PortId id, UniqueFd fd, std::string peer)
    : FdPort(loop, net, id),
      in_(new std::uint8_t[net.max_frame() + 4 + 256 * 1024]),
      in_capacity_(net.max_frame() + 4 + 256 * 1024),
      deframer_(net.max_frame()),
      peer_(std::move(peer)),
      retry_timer_(loop, [] {}) {
  attach(std::move(fd));
}

StreamPort::StreamPort(EventLoop& loop, Network& net, PortId id, SockAddr remote)
    : FdPort(loop, net, id),
      in_(new std::uint8_t[net.max_frame() + 4 + 256 * 1024]),
      in_capacity_(net.max_frame() + 4 + 256 * 1024),
      deframer_(net.max_frame()),
      peer_(remote.to_string()),
      reconnect_(true),
      remote_(remote),
      retry_timer_(loop, [this] { start_connect(); }) {
  start_connect();
}

void StreamPort::start_connect() {
  UniqueFd fd(::socket(remote_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    lost(errno_text("socket"));
    return;
  }
  tune_stream_socket(fd.get(), remote_.family());
  int rc = ::connect(fd.get(), remote_.get(), remote_.length);
  if (rc != 0 && errno == EACCES && connected_by_helper(fd, remote_)) rc = 0;
  if (rc != 0 && errno != EINPROGRESS) {
    int err = errno;
    lost(errno_text("connect", err));
    return;
  }
  connecting_ = true;
  state_ = "connecting";
  attach(std::move(fd));
  // Completion (or failure) of a non-blocking connect shows as writable.
  loop_.modify(this->fd(), EPOLLOUT);
}

void StreamPort::on_connect_result() {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    lost(errno_text("connect", err));
    return;
  }
  connecting_ = false;
  backoff_ = 0;
  state_ = "connected";
  in_used_ = out_partial_ = 0;
  deframer_.reset();
  loop_.modify(fd(), EPOLLIN);
  log::info("{}: port {} connected to {}", net_.name(), id(), peer_);
}

void StreamPort::on_writable() {
  if (connecting_) on_connect_result();
  else flush();
}

void StreamPort::on_error() {
  if (connecting_) on_connect_result();
  else on_readable();
}

void StreamPort::lost(const std::string& why) {
  detach();
  in_used_ = out_partial_ = 0;
  deframer_.reset();
  if (!reconnect_) {
    log::info("{}: port {} peer {} gone: {}", net_.name(), id(), peer_, why);
    state_ = "closed";
    close_later();
    return;
  }
  backoff_ = backoff_ == 0 ? kFirstBackoff : std::min(backoff_ * 2, kMaxBackoff);
  if (!connecting_ || backoff_ >= kSeconds)
    log::info("{}: port {} {} ({}); retrying in {} ms", net_.name(), id(), peer_, why, backoff_ / kMillis);
  connecting_ = false;
  state_ = "waiting: " + why;
  retry_timer_.arm_in(backoff_);
}

void StreamPort::on_readable() {
  if (connecting_) {
    on_connect_result();
    return;
  }
  // Bounded work per wake-up so one busy peer cannot starve the others.
  for (int round = 0; round < 16; ++round) {
    ssize_t n = ::read(fd(), in_.get() + in_used_, in_capacity_ - in_used_);
    if (n == 0) {
      lost("connection closed by peer");
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      lost(errno_text("read"));
      return;
    }
    in_used_ += static_cast<std::size_t>(n);
    parse_frames();
    if (!attached()) return;
  }
}

void StreamPort::parse_frames() {
  std::size_t consumed = 0;
  auto result = deframer_.consume({in_.get(), in_used_}, consumed, counters_, [this](wire::Bytes frame) {
    from_peer(frame);
    return attached();
  });
  if (result == StreamDeframer::Result::Fatal) {
    lost("a length prefix that is no frame length: closing");
    return;
  }
  if (!attached()) return;
  // Keep the incomplete frame at the front; it is at most one frame long.
  if (consumed > 0) {
    std::memmove(in_.get(), in_.get() + consumed, in_used_ - consumed);
    in_used_ -= consumed;
  }
}

void StreamPort::send_to_peer(wire::Bytes frame) {
  if (connecting_ || !attached()) {
    counters_.drop_down++;
    return;
  }
  std::uint8_t prefix[4];
  wire::store_be32(prefix, 0, static_cast<std::uint32_t>(frame.size()));
  queue_out(prefix, frame);
}

bool StreamPort::write_queued() {
  if (write_stream_records(fd(), out_, out_partial_)) return true;
  lost(errno_text("write"));
  return false;
}

std::string open_stream_listener(UniqueFd& fd, const SockAddr& local) {
  fd.reset(::socket(local.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw UserError(errno_text("socket"));
  std::string unlink_path;
  if (local.family() == AF_UNIX) {
    auto* un = reinterpret_cast<const sockaddr_un*>(&local.storage);
    // A stale socket file from an earlier run would make bind fail; only a
    // socket is removed, never a regular file.
    struct stat st{};
    if (::lstat(un->sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
      UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (::connect(probe.get(), local.get(), local.length) == 0)
        throw UserError("unix socket " + std::string(un->sun_path) + " is in use by another process");
      ::unlink(un->sun_path);
    }
    unlink_path = un->sun_path;
  } else {
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  // A unix socket file is created owner-only whatever the caller's umask;
  // the factory then sets its final mode (see SocketAccess).
  const mode_t old_umask = local.family() == AF_UNIX ? ::umask(0177) : 0;
  const int bound = ::bind(fd.get(), local.get(), local.length);
  if (local.family() == AF_UNIX) ::umask(old_umask);
  // Without root: the privileged helper binds what only root may (a path in
  // root's run dir, a port below 1024), if its rules allow.
  if (bound != 0 && !privsep::bind_through_helper(fd, local, privsep::SocketType::Stream))
    throw UserError(errno_text("cannot listen on " + local.to_string()));
  if (::listen(fd.get(), 64) != 0) {
    if (!unlink_path.empty()) ::unlink(unlink_path.c_str());
    throw UserError(errno_text("listen on " + local.to_string()));
  }
  return unlink_path;
}

StreamListenerPort::StreamListenerPort(EventLoop& loop, Network& net, PortId id, SockAddr local)
    : Port(loop, net, id), local_(local) {
  unlink_path_ = open_stream_listener(fd_, local);
  if (local.family() != AF_UNIX) {
    // Report the real port when 0 was asked for.
    socklen_t len = sizeof local_.storage;
    getsockname(fd_.get(), local_.get(), &len);
    local_.length = len;
  }
  loop_.add(fd_.get(), EPOLLIN, [this](std::uint32_t) { accept_all(); });
  pause_ = std::make_unique<AcceptPause>(loop_, fd_.get(), net.name() + ": port " + std::to_string(id));
}

StreamListenerPort::~StreamListenerPort() {
  loop_.remove(fd_.get());
  if (!unlink_path_.empty()) ::unlink(unlink_path_.c_str());
}

void StreamListenerPort::accept_all() {
  for (;;) {
    SockAddr peer;
    peer.length = sizeof peer.storage;
    UniqueFd conn(::accept4(fd_.get(), peer.get(), &peer.length, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!conn) {
      const int err = errno;
      if (err == EINTR || err == ECONNABORTED) continue;
      if (err != EAGAIN && err != EWOULDBLOCK && !pause_->pause_if_exhausted(err))
        accept_log_.warn("{}: port {} accept: {}", net_.name(), id(), std::strerror(err));
      return;
    }
    tune_stream_socket(conn.get(), local_.family());
    std::string peer_name = local_.family() == AF_UNIX ? local_.to_string() : peer.to_string();
    PortId child_id = net_.next_port_id();
    auto child = std::make_unique<StreamPort>(loop_, net_, child_id, std::move(conn), peer_name);
    child->inherit_settings(*this);
    net_.add_port(std::move(child));
    accept_log_.info("{}: port {} accepted {} as port {}", net_.name(), id(), peer_name, child_id);
  }
}

}  // namespace vnet
