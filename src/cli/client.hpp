// The CLI's side of the control socket.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/fd.hpp"

namespace vnet::cli {

// RUN_DIR from --run-dir, $VNET_RUN_DIR, /run/vnet for root, or $XDG_RUNTIME_DIR/vnet;
// with none of these, a UserError naming --run-dir.
std::string resolve_run_dir(const std::string& flag);
std::string control_socket_path(const std::string& run_dir);

class ControlClient {
 public:
  // Throws UserError "vnet is not running in RUN_DIR (start it with `vnet up`)".
  explicit ControlClient(const std::string& run_dir);
  // Sends a request and returns the reply; a reply with ok=false throws UserError.
  nlohmann::json call(const nlohmann::json& request);
  // After a capture request: the rest of the connection is pcap.
  int fd() const { return fd_.get(); }
  std::string take_buffered();

 private:
  UniqueFd fd_;
  std::string buffer_;
};

// True if an engine answers on this run dir.
bool engine_running(const std::string& run_dir);
// The pid in RUN_DIR/vnet.pid, or 0.
int engine_pid(const std::string& run_dir);
// True while pid (> 0) is a process that has not exited (a zombie counts as exited).
bool process_alive(int pid);

}  // namespace vnet::cli
