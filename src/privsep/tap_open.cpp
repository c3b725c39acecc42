#include "privsep/tap_open.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>

#include "core/error.hpp"
#include "fabric/offload.hpp"

namespace vnet::privsep {
void bring_interface_up(const std::string& ifname) {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  if (!sock || ::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) return;
  if (ifr.ifr_flags & IFF_UP) return;
  ifr.ifr_flags |= IFF_UP;
  // Without CAP_NET_ADMIN this fails; the user then brings it up themselves.
  ::ioctl(sock.get(), SIOCSIFFLAGS, &ifr);
}

NetnsGuard::NetnsGuard(const std::string& name) {
  if (name.empty()) return;
  if (name.find('/') != std::string::npos || name == "." || name == "..")
    throw UserError("bad namespace name '" + name + "'");
  original_.reset(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  UniqueFd target(::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!target) throw UserError(errno_text("network namespace '" + name + "' (see `ip netns list`)"));
  if (!original_ || ::setns(target.get(), CLONE_NEWNET) != 0)
    throw UserError(errno_text("cannot enter network namespace '" + name + "'"));
}

NetnsGuard::~NetnsGuard() {
  if (original_) ::setns(original_.get(), CLONE_NEWNET);
}

UniqueFd open_tap_device(const std::string& ifname, const std::string& netns) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ)
    throw UserError("tap: ifname must be 1 to " + std::to_string(IFNAMSIZ - 1) + " characters");
  NetnsGuard in_namespace(netns);
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd) throw UserError(errno_text("cannot open /dev/net/tun"));
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
    int err = errno;
    if (err == EPERM)
      throw UserError("cannot create TAP device " + ifname +
                      ": permission denied (needs CAP_NET_ADMIN; or create it first with "
                      "`ip tuntap add " + ifname + " mode tap user $USER`)");
    if (err == EBUSY) throw UserError("TAP device " + ifname + " is already in use by another process");
    throw UserError(errno_text("cannot open TAP device " + ifname, err));
  }
  int hdr_len = Offload::kHeaderLen;
  const unsigned offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
  if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr_len) != 0 || ::ioctl(fd.get(), TUNSETOFFLOAD, offloads) != 0)
    throw UserError(errno_text("cannot enable offloads on TAP device " + ifname));
  bring_interface_up(ifname);
  return fd;
}

}  // namespace vnet::privsep
