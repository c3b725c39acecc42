// Persistent definitions: what was added at runtime (networks, listening and
// other ports, DHCP reservations given with `net add`, port forwards) and the
// DHCP leases of NAT networks, saved in a state directory and restored by
// `vnet up`, like `virsh net-define`.
//
// Precedence: the config file (or the built-in default network) is applied
// first at every start; the state then adds what was defined at runtime on
// top. A saved network whose name the config now declares is skipped (the
// file wins); deleting at runtime something the file declares lasts until
// the next start. Networks added with `--transient`, and their ports and
// forwards, are never saved.
//
// Files: DIR/state.json, replaced atomically (written to state.json.tmp,
// fsynced, renamed over state.json, the directory fsynced), and
// DIR/state.json.prev, the last good state before it, written the same way
// from memory (never copied from a file that may be damaged). A state.json that does not parse (truncated by a
// full disk or a crash of the file system) is reported with its path and
// line, kept as state.json.corrupt, and state.json.prev is used instead.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/fd.hpp"

namespace vnet {

class Engine;

// --state-dir, else $VNET_STATE_DIR, else: with a run dir of one's own
// (--run-dir, $VNET_RUN_DIR) RUN_DIR/state, so side-by-side engines keep
// apart; as root /var/lib/vnet; else $XDG_STATE_HOME/vnet or ~/.local/state/vnet.
std::string resolve_state_dir(const std::string& flag, const std::string& run_dir, bool run_dir_chosen);

// Parses and checks the text of a state file; on failure, nullopt and
// `problem` names PATH:LINE and what is wrong.
std::optional<nlohmann::json> parse_state(const std::string& path, const std::string& text, std::string& problem);

class StateStore {
 public:
  explicit StateStore(std::string dir);
  const std::string& dir() const { return dir_; }
  std::string path() const { return dir_ + "/state.json"; }

  struct Loaded {
    nlohmann::json state = nlohmann::json::object();  // empty object: nothing saved yet
    std::vector<std::string> problems;                // one line each, naming the file and line
  };
  // Creates the directory (0700) if needed and keeps it open: saves go
  // through that descriptor, so an engine that dropped root keeps saving
  // into a directory whose parents it may not enter (the run dir's state/).
  // Never throws for bad content.
  Loaded load() const;
  // As root, before the engine drops to an unprivileged user: the directory
  // and its files become that user's, so the engine can keep saving.
  void give_to(uid_t uid, gid_t gid) const;
  // The atomic replace described above, previous_text becoming
  // state.json.prev; throws UserError on I/O failure.
  void save(const std::string& text, const std::string& previous_text) const;

 private:
  const UniqueFd& directory() const;  // opened on first use
  void replace_file(const std::string& name, const std::string& text) const;

  std::string dir_;
  std::shared_ptr<UniqueFd> dir_fd_ = std::make_shared<UniqueFd>();  // shared by copies; set by load()
};

// Records definition changes as they are made and keeps the state file current.
class Persistence {
 public:
  Persistence(Engine& engine, StateStore store);

  // Replays saved definitions through the control requests (after the config
  // file), then the leases; returns what could not be restored, one line each.
  // From then on every successful change is recorded and saved.
  std::vector<std::string> restore(const nlohmann::json& saved);
  // A request the engine carried out (request.cpp calls it through the engine).
  void record(const nlohmann::json& request, const nlohmann::json& reply);
  // Saves now; a failure is logged and shown in status, never thrown.
  void save();
  // Saves if anything (a lease) changed since the last save.
  void save_if_changed();
  nlohmann::json status() const;

 private:
  nlohmann::json snapshot() const;

  Engine& engine_;
  StateStore store_;
  std::vector<nlohmann::json> entries_;     // {"request": net_add|port_add|pf_add, "port"|"name": ...}
  std::vector<nlohmann::json> unrestored_;  // saved entries that failed at restore: kept, never dropped silently
  std::set<std::string> transient_;         // networks not to save
  std::string last_written_;
  std::string last_error_;
  std::uint64_t saves_ = 0;
  bool restoring_ = false;
};

}  // namespace vnet
