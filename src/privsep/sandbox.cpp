#include "privsep/sandbox.hpp"

#include <unistd.h>

#include "core/error.hpp"
#include "core/log.hpp"

namespace vnet::privsep {
Sandbox::Sandbox(std::unique_ptr<Broker> broker) : broker_(std::move(broker)) { set_broker(broker_.get()); }

Sandbox::~Sandbox() {
  if (!broker_) return;
  try {
    broker_->cleanup();
  } catch (const UserError& e) {
    log::warn("run dir clean-up: {}", e.what());
  }
  set_broker(nullptr);
}

std::optional<std::string> engine_user(const SandboxOptions& options) {
  if (::geteuid() != 0 || options.user == "root") return std::nullopt;
  return options.user.empty() || options.user == "auto" ? isolation::default_user() : options.user;
}

std::unique_ptr<Sandbox> enter_sandbox(const SandboxOptions& options, const std::string& run_dir,
                                       std::optional<gid_t> socket_group) {
  using namespace isolation;
  const bool as_root = ::geteuid() == 0;
  const std::optional<std::string> user_name = engine_user(options);
  if (as_root && !user_name) {
    // Debugging: everything as before, but still no new privileges and the filter.
    set_no_new_privs();
    install_seccomp(options.seccomp, true);
    log::warn("engine keeps root (--user root): no privilege separation; seccomp {}", to_string(options.seccomp));
    return std::make_unique<Sandbox>(nullptr);
  }
  std::unique_ptr<Broker> broker;
  std::optional<UserIds> user;
  if (as_root) {
    user = lookup_user(*user_name);
    if (user->uid == 0) throw UserError("--user " + *user_name + " has uid 0: that is root (use --user root to keep it)");
    HelperPolicy policy = make_policy(run_dir, options.allow_paths, options.allow_ports, options.allow_interfaces);
    policy.socket_group = socket_group;
    policy.keep_on_cleanup = options.keep_files;
    broker = start_helper(policy, options.seccomp);
  } else if (!options.user.empty() && options.user != "auto") {
    throw UserError("--user needs vnet started as root (it already runs as an unprivileged user)");
  }
  drop_privileges(user);
  set_no_new_privs();
  install_seccomp(options.seccomp, !broker);
  const auto s = read_process_security();
  log::info("engine runs as uid {} gid {}, capabilities {}, no_new_privs {}, seccomp {}{}", s.uid, s.gid, s.cap_eff,
            s.no_new_privs, to_string(options.seccomp), broker ? ", privileged helper started" : "");
  return std::make_unique<Sandbox>(std::move(broker));
}

}  // namespace vnet::privsep
