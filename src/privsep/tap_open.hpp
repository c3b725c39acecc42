// Opening a TAP device: shared by the engine (when it may do it itself) and
// by the privileged helper (when it may not).
#pragma once

#include <string>

#include "core/fd.hpp"

namespace vnet::privsep {

// Enters a named network namespace (/run/netns/NAME; "" = stay) for the
// lifetime of the object. Throws UserError if it cannot.
class NetnsGuard {
 public:
  explicit NetnsGuard(const std::string& name);
  ~NetnsGuard();
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;

 private:
  UniqueFd original_;
};

// Sets IFF_UP on ifname if it is not up; quietly leaves it without CAP_NET_ADMIN.
void bring_interface_up(const std::string& ifname);

// Creates or attaches the TAP device ifname (inside /run/netns/NAME when
// netns is not empty) with a virtio-net header and offloads, brings it up
// where allowed, and returns its fd (non-blocking, close-on-exec). Throws
// UserError naming the device and what to do.
UniqueFd open_tap_device(const std::string& ifname, const std::string& netns);

}  // namespace vnet::privsep
