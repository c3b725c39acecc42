// `vnet up`: runs the engine, in the foreground or as a background daemon
// that reports readiness (or the reason it could not start) to the parent.
#pragma once

#include <string>

#include "core/clock.hpp"
#include "privsep/sandbox.hpp"

namespace vnet::cli {

// The most the loop polls after a turn (EventLoop::set_busy_poll): held
// back after bulk data and when the CPU is wanted, so it is on by default
// (docs/operations.md has the figures).
constexpr Nanos kDefaultBusyPoll = 50 * kMicros;

struct UpOptions {
  std::string run_dir;
  std::string config_path;
  bool foreground = false;
  std::string log_level;  // overrides the config's
  privsep::SandboxOptions sandbox;  // user, seccomp, helper's extra directories
  std::string state_dir;
  std::string metrics_addr;  // --metrics: loopback HTTP listener for /metrics (empty: none)  // saved definitions and leases (control/state.hpp)
  std::string socket_group;  // --group: data sockets 0660 for this group (default: owner only, 0600)
  Nanos busy_poll = kDefaultBusyPoll;  // --busy-poll: stay awake this long after an event (EventLoop::set_busy_poll)
};

// Returns the process exit status.
int run_up(const UpOptions& options);

}  // namespace vnet::cli
