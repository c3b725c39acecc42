// Errors that reach a user: one line that names the problem and what to do.
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace vnet {

// Thrown by the control plane (never on the packet path) for bad requests,
// bad configuration and failed set-up; the message is shown to the user as is.
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "what: strerror(errno)" for a failed system call.
inline std::string errno_text(const std::string& what, int err = errno) {
  return what + ": " + std::strerror(err);
}

}  // namespace vnet
