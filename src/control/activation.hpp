// Socket activation (sd_listen_fds(3)): a service manager that already
// listens on the control socket passes it to `vnet up` as fd 3, with
// LISTEN_PID (our pid) and LISTEN_FDS (how many) in the environment. The
// engine then accepts on that socket instead of binding its own, so clients
// that connect before the engine runs are queued, not refused.
//
// The passed fd is checked before use: a listening unix stream socket bound
// to the path clients look for (RUN_DIR/control.sock). Who may talk on it is
// still decided per connection by ControlServer (SO_PEERCRED).
#pragma once

#include <sys/types.h>

#include <string>

#include "core/fd.hpp"

namespace vnet {

// The first passed fd, as systemd numbers them.
constexpr int kListenFdsStart = 3;

// How many fds were passed to process `self`: 0 without LISTEN_PID, or when
// LISTEN_PID names another process (the variables were inherited). Values
// that are not decimal numbers, or a count other than 0 or 1, are a
// UserError: vnet takes exactly one socket, its control socket.
int parse_listen_fds(const char* listen_pid, const char* listen_fds, pid_t self);

// Checks that `fd` is a listening unix stream socket bound to `expected_path`
// and takes it over (close-on-exec, non-blocking). UserError otherwise, saying
// what the socket unit should declare.
UniqueFd adopt_control_socket(int fd, const std::string& expected_path);

// Reads and removes LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES (so that no
// child inherits them) and returns the control socket the service manager
// passed, or an empty UniqueFd when it passed none.
UniqueFd take_activated_control_socket(const std::string& expected_path);

}  // namespace vnet
