#include "ports/vde.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "core/error.hpp"
#include "core/sockaddr.hpp"
#include "fabric/network.hpp"
#include "wire/vde.hpp"

namespace vnet {
namespace {

constexpr Nanos kFirstBackoff = 100 * kMillis;
constexpr Nanos kMaxBackoff = 5 * kSeconds;
constexpr int kReplyTimeoutMs = 2000;

void check_path_fits(const std::string& path) {
  if (path.size() >= wire::kVdePathMax)
    throw UserError("VDE socket path " + path + " is too long for a unix socket (at most 107 bytes)");
}

// Binds fd to path with mode 0600 whatever the umask; replaces a stale
// socket file (never anything else) left by an earlier run.
void bind_owner_only(int fd, const std::string& path) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw UserError(path + " exists and is not a socket: refusing to replace it");
    ::unlink(path.c_str());
  }
  const SockAddr addr = SockAddr::unix_path(path);
  const mode_t old = ::umask(0177);
  const int rc = ::bind(fd, addr.get(), addr.length);
  ::umask(old);
  if (rc != 0) throw UserError(errno_text("cannot bind " + path));
}

// Connects a datagram socket to the plug's socket at path, through the inode
// checked here: a socket, not a symlink, owned by the plug's user (any owner
// when the plug is root). See vde.hpp.
void connect_to_plug(int fd, const std::string& path, const ucred& cred) {
  UniqueFd node(::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!node) throw UserError(errno_text("plug socket " + path));
  struct stat st{};
  if (::fstat(node.get(), &st) != 0 || !S_ISSOCK(st.st_mode))
    throw UserError("plug socket " + path + " is not a socket");
  if (cred.uid != 0 && st.st_uid != cred.uid)
    throw UserError("plug socket " + path + " belongs to uid " + std::to_string(st.st_uid) + ", not to the plug's uid " +
                    std::to_string(cred.uid));
  const SockAddr via = SockAddr::unix_path("/proc/self/fd/" + std::to_string(node.get()));
  if (::connect(fd, via.get(), via.length) != 0) throw UserError(errno_text("cannot connect to plug socket " + path));
}

UniqueFd datagram_socket() {
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw UserError(errno_text("socket"));
  int size = 4 << 20;
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  return fd;
}

}  // namespace

// ---- frames over a connected datagram socket --------------------------------

VdeDataPort::VdeDataPort(EventLoop& loop, Network& net, PortId id)
    : FdPort(loop, net, id),
      batch_(std::min<std::size_t>(net.max_frame(), 65536)) {}

void VdeDataPort::on_readable() {
  for (int round = 0; round < 8; ++round) {
    const int n = batch_.receive(fd());
    for (int i = 0; i < n; ++i) {
      if (batch_.truncated(i)) {
        counters_.drop_oversize++;
        continue;
      }
      from_peer(batch_.datagram(i));
      if (!attached()) return;
    }
    if (n < DatagramBatch::kSize) return;
  }
}

void VdeDataPort::send_to_peer(wire::Bytes frame) { queue_out({}, frame); }

bool VdeDataPort::write_queued() {
  while (!out_.empty()) {
    batch_.start_sending();
    out_.for_each([&](const FrameQueue::Record& r) { return batch_.add(r.bytes); });
    const int sent = batch_.send(fd());
    if (sent < 0) {
      // A full peer queue: wait for EPOLLOUT, which a connected unix datagram
      // socket reports when the peer has room again.
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return true;
      // The plug's socket is gone: the frame is lost, as on an unplugged cable.
      drop_unsendable_front(counters_.drop_down);
      continue;
    }
    for (int i = 0; i < sent; ++i) out_.pop();
  }
  return true;
}

// ---- one plug attached to our switch ----------------------------------------

VdeConnectionPort::VdeConnectionPort(EventLoop& loop, Network& net, PortId id, UniqueFd control, UniqueFd data,
                                     std::string data_path, std::string peer)
    : VdeDataPort(loop, net, id), control_(std::move(control)), data_path_(std::move(data_path)), peer_(std::move(peer)) {
  attach(std::move(data));
  loop_.add(control_.get(), EPOLLIN, [this](std::uint32_t) { on_control(); });
}

VdeConnectionPort::~VdeConnectionPort() {
  loop_.remove(control_.get());
  ::unlink(data_path_.c_str());
}

void VdeConnectionPort::on_control() {
  // Nothing more is said on the control connection; its end unplugs.
  std::uint8_t sink[256];
  const ssize_t n = ::read(control_.get(), sink, sizeof sink);
  if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) return;
  loop_.remove(control_.get());
  control_.reset();
  log::info("{}: port {} VDE plug {} unplugged", net_.name(), id(), peer_);
  detach();
  close_later();
}

// ---- vnet as a VDE switch ---------------------------------------------------

VdeSwitchPort::VdeSwitchPort(EventLoop& loop, Network& net, PortId id, std::string dir, SocketAccess access)
    : Port(loop, net, id), dir_(std::move(dir)), access_(access), expiry_(loop, [this] { expire_pending(); }) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  if (dir_.empty() || dir_.front() != '/') throw UserError("vde: dir=" + dir_ + " must be an absolute path");
  ctl_path_ = dir_ + "/ctl";
  check_path_fits(dir_ + "/0000000000");
  prepare_dir();
  try {
    listen_fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!listen_fd_) throw UserError(errno_text("socket"));
    const SockAddr ctl = SockAddr::unix_path(ctl_path_);
    struct stat st{};
    if (::lstat(ctl_path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (::connect(probe.get(), ctl.get(), ctl.length) == 0)
        throw UserError("VDE switch " + dir_ + " is in use by another process (" + ctl_path_ + " answers)");
    }
    bind_owner_only(listen_fd_.get(), ctl_path_);
    apply_socket_access(ctl_path_, access_);
    if (::listen(listen_fd_.get(), 16) != 0) throw UserError(errno_text("listen on " + ctl_path_));
  } catch (...) {
    listen_fd_.reset();
    ::unlink(ctl_path_.c_str());
    if (created_dir_) ::unlinkat(AT_FDCWD, dir_.c_str(), AT_REMOVEDIR);
    throw;
  }
  loop_.add(listen_fd_.get(), EPOLLIN, [this](std::uint32_t) { accept_all(); });
}

VdeSwitchPort::~VdeSwitchPort() {
  for (auto& [fd, p] : pending_) loop_.remove(fd);
  pending_.clear();
  loop_.remove(listen_fd_.get());
  listen_fd_.reset();
  ::unlink(ctl_path_.c_str());
  // Only a directory we made, and only if empty (plugs may still be there).
  if (created_dir_) ::unlinkat(AT_FDCWD, dir_.c_str(), AT_REMOVEDIR);
}

void VdeSwitchPort::prepare_dir() {
  struct stat st{};
  if (::lstat(dir_.c_str(), &st) != 0) {
    if (errno != ENOENT) throw UserError(errno_text("VDE directory " + dir_));
    if (::mkdir(dir_.c_str(), 0700) != 0)
      throw UserError(errno_text("cannot create VDE directory " + dir_ +
                                 " (its parent must be writable by the engine's user)"));
    created_dir_ = true;
  } else if (!S_ISDIR(st.st_mode)) {
    throw UserError("VDE directory " + dir_ + " exists and is not a directory (a symlink is refused too)");
  } else if (st.st_uid != ::geteuid()) {
    throw UserError("VDE directory " + dir_ + " belongs to uid " + std::to_string(st.st_uid) +
                    ": use a directory of the engine's user, or a new path");
  }
  // Group members must create their plug's socket inside: rwx for the group,
  // and setgid so those sockets carry the group too.
  if (access_.group && ::lchown(dir_.c_str(), static_cast<uid_t>(-1), *access_.group) != 0)
    throw UserError(errno_text("cannot give VDE directory " + dir_ + " to group " + std::to_string(*access_.group)));
  if (::chmod(dir_.c_str(), access_.group ? 02770 : 0700) != 0)
    throw UserError(errno_text("cannot set the mode of VDE directory " + dir_));
}

void VdeSwitchPort::accept_all() {
  for (;;) {
    UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!conn) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) log_.warn("{}: port {} accept: {}", net_.name(), id(), std::strerror(errno));
      return;
    }
    if (pending_.size() >= kMaxPending) {
      counters_.drop_overflow++;
      log_.warn("{}: port {} refuses a VDE plug: {} handshakes already pending", net_.name(), id(), kMaxPending);
      continue;
    }
    auto p = std::make_unique<Pending>();
    socklen_t len = sizeof p->cred;
    if (::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &p->cred, &len) != 0) continue;
    p->deadline = monotonic_now() + kHandshakeTimeout;
    const int fd = conn.get();
    p->fd = std::move(conn);
    pending_[fd] = std::move(p);
    loop_.add(fd, EPOLLIN, [this, fd](std::uint32_t) { on_pending(fd); });
    if (!expiry_.armed()) expiry_.arm_in(kHandshakeTimeout);
  }
}

void VdeSwitchPort::on_pending(int fd) {
  auto it = pending_.find(fd);
  if (it == pending_.end()) return;
  Pending& p = *it->second;
  const ssize_t n = ::read(fd, p.buffer + p.used, sizeof p.buffer - p.used);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    close_pending(fd, "");
    return;
  }
  p.used += static_cast<std::size_t>(n);
  // libvdeplug sends its request in one write; the description's length is
  // not in the message, so a request is complete once the fixed part is here.
  if (p.used < wire::kVdeRequestFixed) return;
  // The connection leaves the pending set either way: it becomes the plug's
  // control connection, or it is closed when `owned` goes.
  loop_.remove(fd);
  std::unique_ptr<Pending> owned = std::move(it->second);
  pending_.erase(it);
  try {
    attach_plug(*owned);
  } catch (const UserError& e) {
    counters_.drop_malformed++;
    log_.warn("{}: port {} VDE handshake refused: {}", net_.name(), id(), e.what());
  }
}

void VdeSwitchPort::close_pending(int fd, const std::string& why) {
  if (!why.empty()) log_.warn("{}: port {} VDE handshake refused: {}", net_.name(), id(), why);
  loop_.remove(fd);
  pending_.erase(fd);
}

void VdeSwitchPort::expire_pending() {
  const Nanos now = monotonic_now();
  std::vector<int> late;
  for (auto& [fd, p] : pending_)
    if (now >= p->deadline) late.push_back(fd);
  for (int fd : late) {
    counters_.drop_malformed++;
    close_pending(fd, "no request within 5 s");
  }
  if (!pending_.empty()) expiry_.arm_in(kSeconds);
}

void VdeSwitchPort::attach_plug(Pending& p) {
  const auto parsed = wire::parse_vde_request({p.buffer, p.used});
  if (!parsed.ok()) throw UserError(std::string("bad request: ") + wire::to_string(parsed.error));
  const PortId child_id = net_.next_port_id();
  try {
    char name[16];
    std::snprintf(name, sizeof name, "/%03u", child_id);
    const std::string data_path = dir_ + name;
    UniqueFd data = datagram_socket();
    connect_to_plug(data.get(), parsed.request.socket_path, p.cred);
    bind_owner_only(data.get(), data_path);
    apply_socket_access(data_path, access_);
    const auto reply = wire::emit_vde_reply(data_path);
    if (::write(p.fd.get(), reply.data(), reply.size()) != static_cast<ssize_t>(reply.size())) {
      ::unlink(data_path.c_str());
      throw UserError(errno_text("reply to plug"));
    }
    std::string peer = "uid " + std::to_string(p.cred.uid) + " pid " + std::to_string(p.cred.pid);
    if (!parsed.request.description.empty()) peer += ": " + parsed.request.description;
    auto child = std::make_unique<VdeConnectionPort>(loop_, net_, child_id, std::move(p.fd), std::move(data), data_path,
                                                     peer);
    child->inherit_settings(*this);
    net_.add_port(std::move(child));
    log_.info("{}: port {} plugged VDE {} in as port {}", net_.name(), id(), peer, child_id);
  } catch (...) {
    net_.release_port_id(child_id);
    throw;
  }
}

// ---- vnet as a plug in a vde_switch -----------------------------------------

VdePlugPort::VdePlugPort(EventLoop& loop, Network& net, PortId id, std::string switch_dir)
    : VdeDataPort(loop, net, id), dir_(std::move(switch_dir)), retry_(loop, [this] {
        try {
          plug_in();
        } catch (const UserError& e) {
          lost(e.what());
        }
      }) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  check_path_fits(dir_ + "/.vnet-0000000000-0000000000");
  plug_in();  // the first failure is the user's to see
}

VdePlugPort::~VdePlugPort() {
  if (control_) loop_.remove(control_.get());
}

void VdePlugPort::plug_in() {
  UniqueFd control(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!control) throw UserError(errno_text("socket"));
  const std::string ctl_path = dir_ + "/ctl";
  const SockAddr ctl = SockAddr::unix_path(ctl_path);
  if (::connect(control.get(), ctl.get(), ctl.length) != 0)
    throw UserError(errno_text("cannot reach the VDE switch at " + ctl_path));
  UniqueFd data = datagram_socket();
  // Our socket lives in the switch's directory only until the switch has
  // connected to it (the reply says so); then its name is removed.
  const std::string own_path =
      dir_ + "/.vnet-" + std::to_string(::getpid()) + "-" + std::to_string(id());
  bind_owner_only(data.get(), own_path);
  struct Unlink {
    const std::string& path;
    ~Unlink() { ::unlink(path.c_str()); }
  } unlink_own{own_path};
  const auto request = wire::emit_vde_request(own_path, "vnet network " + net_.name() + " port " + std::to_string(id()));
  if (::write(control.get(), request.data(), request.size()) != static_cast<ssize_t>(request.size()))
    throw UserError(errno_text("cannot send the VDE request to " + ctl_path));
  pollfd pfd{control.get(), POLLIN, 0};
  if (::poll(&pfd, 1, kReplyTimeoutMs) != 1) throw UserError("the VDE switch at " + dir_ + " did not answer within 2 s");
  std::uint8_t reply[wire::kVdeSockaddrLen + 1];
  const ssize_t n = ::read(control.get(), reply, sizeof reply);
  if (n <= 0) throw UserError("the VDE switch at " + dir_ + " closed the connection (port refused?)");
  const auto parsed = wire::parse_vde_reply({reply, static_cast<std::size_t>(n)});
  if (!parsed.ok()) throw UserError(std::string("bad reply from the VDE switch: ") + wire::to_string(parsed.error));
  const SockAddr switch_data = SockAddr::unix_path(parsed.socket_path);
  if (::connect(data.get(), switch_data.get(), switch_data.length) != 0)
    throw UserError(errno_text("cannot connect to the VDE switch's socket " + parsed.socket_path));
  const int flags = ::fcntl(control.get(), F_GETFL);
  ::fcntl(control.get(), F_SETFL, flags | O_NONBLOCK);
  control_ = std::move(control);
  loop_.add(control_.get(), EPOLLIN, [this](std::uint32_t) { on_control(); });
  attach(std::move(data));
  backoff_ = 0;
  state_ = "connected";
  log::info("{}: port {} plugged into VDE switch {}", net_.name(), id(), dir_);
}

void VdePlugPort::on_control() {
  std::uint8_t sink[256];
  const ssize_t n = ::read(control_.get(), sink, sizeof sink);
  if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) return;
  lost("the switch closed the connection");
}

void VdePlugPort::lost(const std::string& why) {
  if (control_) {
    loop_.remove(control_.get());
    control_.reset();
  }
  detach();
  backoff_ = backoff_ == 0 ? kFirstBackoff : std::min(backoff_ * 2, kMaxBackoff);
  if (backoff_ == kFirstBackoff || backoff_ >= kSeconds)
    log::info("{}: port {} VDE switch {}: {}; retrying in {} ms", net_.name(), id(), dir_, why, backoff_ / kMillis);
  state_ = "waiting: " + why;
  retry_.arm_in(backoff_);
}

void VdePlugPort::send_to_peer(wire::Bytes frame) {
  if (!attached()) {
    counters_.drop_down++;
    return;
  }
  VdeDataPort::send_to_peer(frame);
}

}  // namespace vnet
