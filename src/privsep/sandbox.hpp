// Entering the engine's sandbox once its start-up configuration is in place.
//
// Started as root: fork the privileged helper (privsep/helper.hpp), then
// become the engine's user (--user NAME; by default "vnet" if the install
// created it, else "nobody") with no supplementary groups and no
// capabilities, set no_new_privs and install the seccomp allowlist
// (core/isolation.hpp). `--user root` (for debugging, or set-ups that need
// root's reach at runtime) keeps root: no helper, no drop, but no_new_privs
// and the filter still apply. Started as another user: no helper and no
// user change; capabilities are cleared and the same no_new_privs and
// seccomp filter apply.
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
  std::string user;  // "" or "auto": isolation::default_user(); "root": keep root
  isolation::SeccompMode seccomp = isolation::SeccompMode::On;
  std::vector<std::string> allow_paths;  // extra directories the helper serves
  std::vector<std::uint16_t> allow_ports;  // ports below 1024 the helper may bind
  std::vector<std::string> allow_interfaces;  // host interfaces the helper may hand over (--allow-if)
  // Run-dir files the clean-up at the end leaves alone: a control socket a
  // service manager passed belongs to it and keeps listening.
  std::vector<std::string> keep_files;
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

// The user a root-started engine becomes, or nullopt when it keeps root
// (`--user root`) or was not started as root.
std::optional<std::string> engine_user(const SandboxOptions& options);

// socket_group: `vnet up --group`, applied to the unix sockets the helper binds.
std::unique_ptr<Sandbox> enter_sandbox(const SandboxOptions& options, const std::string& run_dir,
                                       std::optional<gid_t> socket_group = std::nullopt);

}  // namespace vnet::privsep
