// Entering the engine's sandbox once its start-up configuration is in place.
//
// Started as root with --user NAME: fork the privileged helper
// (privsep/helper.hpp), then become NAME ("auto": "vnet" if the install
// created it, else "nobody") with no supplementary groups and no
// capabilities, set
// no_new_privs and install the seccomp allowlist (core/isolation.hpp).
// Without --user (or with `--user root`, for debugging) the engine keeps
// root: no helper, no drop, but no_new_privs and the filter still apply.
// Started as another user: no helper and no user change; capabilities are
// cleared and the same no_new_privs and seccomp filter apply.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/isolation.hpp"
#include "privsep/helper.hpp"

namespace vnet::privsep {

struct SandboxOptions {
  std::string user;  // "" or "root": keep root; "auto": isolation::default_user()
  isolation::SeccompMode seccomp = isolation::SeccompMode::On;
  std::vector<std::string> allow_paths;  // extra directories the helper serves
  std::vector<std::uint16_t> allow_ports;  // ports below 1024 the helper may bind
};

// Undoes nothing (privileges never come back) but, while it lives, is the
// process's broker; at the end it has the helper remove the run dir's pid
// file and sockets, which the engine's user may not unlink.
class Sandbox {
 public:
  explicit Sandbox(std::unique_ptr<Broker> broker);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

 private:
  std::unique_ptr<Broker> broker_;
};

// socket_group: `vnet up --group`, applied to the unix sockets the helper binds.
std::unique_ptr<Sandbox> enter_sandbox(const SandboxOptions& options, const std::string& run_dir,
                                       std::optional<gid_t> socket_group = std::nullopt);

}  // namespace vnet::privsep
