#include "ports/dgram.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

#include "core/error.hpp"
#include "core/log.hpp"
#include "fabric/network.hpp"
#include "privsep/helper.hpp"

namespace vnet {

DgramPort::DgramPort(EventLoop& loop, Network& net, PortId id, DgramConfig config)
    : FdPort(loop, net, id),
      config_(std::move(config)),
      batch_(std::min<std::size_t>(net.max_frame(), 65536)) {
  if (config_.multicast) open_multicast();
  else open_unicast();
}

DgramPort::~DgramPort() {
  if (!unlink_path_.empty()) ::unlink(unlink_path_.c_str());
}

void DgramPort::open_unicast() {
  UniqueFd fd(::socket(config_.remote.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw UserError(errno_text("socket"));
  if (config_.local) {
    if (config_.local->family() != config_.remote.family())
      throw UserError("local and remote addresses must be of the same type");
    if (config_.local->family() == AF_UNIX) {
      auto* un = reinterpret_cast<const sockaddr_un*>(&config_.local->storage);
      ::unlink(un->sun_path);  // datagram sockets leave their file behind
      unlink_path_ = un->sun_path;
    } else {
      int one = 1;
      setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    }
    if (::bind(fd.get(), config_.local->get(), config_.local->length) != 0 &&
        !privsep::bind_through_helper(fd, *config_.local, privsep::SocketType::Dgram)) {
      unlink_path_.clear();
      throw UserError(errno_text("cannot bind " + config_.local->to_string()));
    }
  }
  int size = 4 << 20;
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  attach(std::move(fd));
}

void DgramPort::open_multicast() {
  if (config_.remote.family() != AF_INET) throw UserError("multicast needs an IPv4 group address");
  auto* group = reinterpret_cast<const sockaddr_in*>(&config_.remote.storage);
  if (!IN_MULTICAST(ntohl(group->sin_addr.s_addr)))
    throw UserError("multicast address " + config_.remote.to_string() + " is not in 224.0.0.0/4");
  in_addr iface{};
  iface.s_addr = htonl(INADDR_ANY);
  if (!config_.mcast_interface.empty() && inet_pton(AF_INET, config_.mcast_interface.c_str(), &iface) != 1)
    throw UserError("localaddr '" + config_.mcast_interface + "' is not an IPv4 address");

  UniqueFd recv_fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!recv_fd) throw UserError(errno_text("socket"));
  int one = 1;
  setsockopt(recv_fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(recv_fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in bind_addr = *group;  // bind to the group: hear only this bus
  if (::bind(recv_fd.get(), reinterpret_cast<sockaddr*>(&bind_addr), sizeof bind_addr) != 0)
    throw UserError(errno_text("cannot bind multicast " + config_.remote.to_string()));
  ip_mreq mreq{};
  mreq.imr_multiaddr = group->sin_addr;
  mreq.imr_interface = iface;
  if (setsockopt(recv_fd.get(), IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0)
    throw UserError(errno_text("cannot join multicast group " + config_.remote.to_string() +
                               " (is there a multicast route, e.g. 224.0.0.0/4 dev lo?)"));

  send_fd_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!send_fd_) throw UserError(errno_text("socket"));
  setsockopt(send_fd_.get(), IPPROTO_IP, IP_MULTICAST_IF, &iface, sizeof iface);
  unsigned char loop_on = 1, ttl = 1;
  setsockopt(send_fd_.get(), IPPROTO_IP, IP_MULTICAST_LOOP, &loop_on, sizeof loop_on);
  setsockopt(send_fd_.get(), IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
  sockaddr_in self{};
  self.sin_family = AF_INET;
  self.sin_addr = iface;
  if (::bind(send_fd_.get(), reinterpret_cast<sockaddr*>(&self), sizeof self) != 0)
    throw UserError(errno_text("cannot bind multicast sender on " + config_.mcast_interface));
  self_.length = sizeof self_.storage;
  getsockname(send_fd_.get(), self_.get(), &self_.length);
  attach(std::move(recv_fd));
}

void DgramPort::on_readable() {
  for (int round = 0; round < 8; ++round) {
    const int n = batch_.receive(fd());
    for (int i = 0; i < n; ++i) {
      if (batch_.truncated(i)) {
        counters_.drop_oversize++;
        continue;
      }
      if (config_.multicast && is_own_frame(batch_.source(i))) continue;
      from_peer(batch_.datagram(i));
      if (!attached()) return;
    }
    if (n < DatagramBatch::kSize) return;
  }
}

// An engine that dropped root may not send to a unix socket in root's
// directories or owned by root (QEMU started by root): the privileged helper
// connects our socket to it, and we send without naming it from then on.
// Tried at most once a second, since the peer may not be there yet.
bool DgramPort::connect_through_helper() {
  if (connected_ || config_.remote.family() != AF_UNIX || !privsep::broker()) return false;
  const Nanos now = monotonic_now();
  if (last_helper_connect_ != Nanos{} && now - last_helper_connect_ < kSeconds) return false;
  last_helper_connect_ = now;
  try {
    privsep::broker()->connect_dgram(fd(), reinterpret_cast<const sockaddr_un*>(&config_.remote.storage)->sun_path);
  } catch (const UserError& e) {
    log::warn("dgram port {}: {}", id(), e.what());
    return false;
  }
  connected_ = true;
  return true;
}

bool DgramPort::is_own_frame(const sockaddr_storage& source) const {
  auto* from = reinterpret_cast<const sockaddr_in*>(&source);
  auto* self = reinterpret_cast<const sockaddr_in*>(&self_.storage);
  if (from->sin_family != AF_INET || from->sin_port != self->sin_port) return false;
  // Bound to any address, the sender's address is only known to the kernel.
  return self->sin_addr.s_addr == htonl(INADDR_ANY) || from->sin_addr.s_addr == self->sin_addr.s_addr;
}

void DgramPort::send_to_peer(wire::Bytes frame) { queue_out({}, frame); }

bool DgramPort::write_queued() {
  const int out_fd = send_fd_ ? send_fd_.get() : fd();
  while (!out_.empty()) {
    batch_.start_sending();
    out_.for_each([&](const FrameQueue::Record& r) {
      return batch_.add(r.bytes, connected_ ? nullptr : config_.remote.get(), config_.remote.length);
    });
    const int sent = batch_.send(out_fd);
    if (sent < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return true;
      if (errno == EACCES && connect_through_helper()) continue;
      // A peer we were connected to went away; when it is back, its path
      // is named again (and connected again if need be).
      if (connected_ && (errno == ECONNREFUSED || errno == ENOTCONN)) connected_ = false;
      // The peer is not there (yet): a unix socket not bound, or ICMP port
      // unreachable on UDP. The frame is lost, as on an unplugged cable.
      drop_unsendable_front(counters_.drop_down);
      continue;
    }
    for (int i = 0; i < sent; ++i) out_.pop();
  }
  return true;
}

}  // namespace vnet
