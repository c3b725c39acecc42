#include "ports/tap.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>

#include "core/error.hpp"
#include "fabric/network.hpp"

namespace vnet {
namespace {

// Enters a named network namespace for the lifetime of the object.
class NetnsGuard {
 public:
  explicit NetnsGuard(const std::string& name) {
    if (name.empty()) return;
    if (name.find('/') != std::string::npos) throw UserError("bad namespace name '" + name + "'");
    original_.reset(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    UniqueFd target(::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC));
    if (!target) throw UserError(errno_text("network namespace '" + name + "' (see `ip netns list`)"));
    if (!original_ || ::setns(target.get(), CLONE_NEWNET) != 0)
      throw UserError(errno_text("cannot enter network namespace '" + name + "'"));
  }
  ~NetnsGuard() {
    if (original_) ::setns(original_.get(), CLONE_NEWNET);
  }
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;

 private:
  UniqueFd original_;
};

void bring_up(const std::string& ifname) {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  if (!sock || ::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) return;
  if (ifr.ifr_flags & IFF_UP) return;
  ifr.ifr_flags |= IFF_UP;
  // Without CAP_NET_ADMIN this fails; the user then brings it up themselves.
  ::ioctl(sock.get(), SIOCSIFFLAGS, &ifr);
}

}  // namespace

TapPort::TapPort(EventLoop& loop, Network& net, PortId id, std::string ifname, std::string netns)
    : FdPort(loop, net, id),
      ifname_(std::move(ifname)),
      netns_(std::move(netns)),
      // Room for the virtio-net header and a whole TSO segment; +1 so that an
      // oversize frame shows as such rather than arriving truncated.
      buffer_size_(Offload::kHeaderLen + std::max(net.max_frame(), Network::kMaxOffloadFrame) + 1) {
  if (ifname_.empty() || ifname_.size() >= IFNAMSIZ)
    throw UserError("tap: ifname must be 1 to " + std::to_string(IFNAMSIZ - 1) + " characters");
  buffer_.reset(new std::uint8_t[buffer_size_]);
  NetnsGuard in_namespace(netns_);
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd) throw UserError(errno_text("cannot open /dev/net/tun"));
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  std::strncpy(ifr.ifr_name, ifname_.c_str(), IFNAMSIZ - 1);
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
    int err = errno;
    if (err == EPERM)
      throw UserError("cannot create TAP device " + ifname_ +
                      ": permission denied (needs CAP_NET_ADMIN; or create it first with "
                      "`ip tuntap add " + ifname_ + " mode tap user $USER`)");
    if (err == EBUSY) throw UserError("TAP device " + ifname_ + " is already in use by another process");
    throw UserError(errno_text("cannot open TAP device " + ifname_, err));
  }
  int hdr_len = Offload::kHeaderLen;
  const unsigned offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
  if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr_len) != 0 || ::ioctl(fd.get(), TUNSETOFFLOAD, offloads) != 0)
    throw UserError(errno_text("cannot enable offloads on TAP device " + ifname_));
  bring_up(ifname_);
  attach(std::move(fd));
}

void TapPort::on_readable() {
  // Bounded batch so a busy TAP cannot starve other ports.
  for (int i = 0; i < 64; ++i) {
    ssize_t n = ::read(fd(), buffer_.get(), buffer_size_);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN, or the device went away (EBADFD): nothing to read
    }
    if (static_cast<std::size_t>(n) < Offload::kHeaderLen) {
      counters_.drop_runt++;
      continue;
    }
    const Offload offload = Offload::parse({buffer_.get(), Offload::kHeaderLen});
    from_peer({buffer_.get() + Offload::kHeaderLen, static_cast<std::size_t>(n) - Offload::kHeaderLen},
              offload.pending() ? &offload : nullptr);
    if (!attached()) return;
  }
}

void TapPort::send_to_peer(wire::Bytes frame) {
  // Every write carries a virtio-net header; all zero for a plain frame.
  static constexpr std::uint8_t kPlain[Offload::kHeaderLen] = {};
  queue_out(kPlain, frame);
}

void TapPort::send_offloaded(wire::Bytes frame, const Offload& offload) {
  std::uint8_t header[Offload::kHeaderLen];
  offload.emit(header);
  queue_out(header, frame);
}

bool TapPort::write_queued() {
  while (!out_.empty()) {
    auto rec = out_.front();
    ssize_t n = ::write(fd(), rec.bytes.data(), rec.bytes.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (errno == EINTR) continue;
      // EIO while the interface is down: the frame is lost, as on a real NIC.
      counters_.drop_down++;
    }
    out_.pop();
  }
  return true;
}

}  // namespace vnet
