#include "control/state.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

#include "control/engine.hpp"
#include "control/request.hpp"
#include "core/error.hpp"
#include "core/fd.hpp"
#include "core/log.hpp"
#include "nat/dhcp.hpp"
#include "nat/gateway.hpp"

namespace vnet {

using nlohmann::json;

namespace {

constexpr const char* kFormat = "vnet-state";
constexpr int kVersion = 1;
// A state file is a few KB per network; anything far larger is not ours.
constexpr std::size_t kMaxStateBytes = 64u << 20;

// Creates DIR and its missing parents with mode 0700.
void make_dirs(const std::string& dir) {
  for (std::size_t pos = 1; pos != std::string::npos;) {
    pos = dir.find('/', pos + 1);
    const std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
      throw UserError(errno_text("cannot create state dir " + part));
  }
}

// The whole file, or nullopt if it does not exist.
std::optional<std::string> read_file(const std::string& path, std::string& problem) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno != ENOENT) problem = errno_text(path);
    return std::nullopt;
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      problem = errno_text(path);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxStateBytes) {
      problem = path + ": larger than " + std::to_string(kMaxStateBytes >> 20) + " MB, not a vnet state file";
      return std::nullopt;
    }
  }
  return text;
}

}  // namespace

std::optional<json> parse_state(const std::string& path, const std::string& text, std::string& problem) {
  json state;
  try {
    state = json::parse(text);
  } catch (const json::parse_error& e) {
    const std::size_t at = std::min<std::size_t>(e.byte ? e.byte - 1 : 0, text.size());
    const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n');
    std::string why = e.what();
    if (auto p = why.find("syntax error"); p != std::string::npos) why = why.substr(p);
    problem = path + ":" + std::to_string(line) + ": " +
              (at >= text.size() ? "the file ends early (truncated, e.g. by a full disk or a crash): " : "") + why;
    return std::nullopt;
  } catch (const json::exception& e) {
    // Well-formed text the parser still refuses, e.g. a number too large
    // for any integer or double (nlohmann gives no position for these).
    problem = path + ": " + e.what();
    return std::nullopt;
  }
  const auto format = state.is_object() ? state.find("format") : state.end();
  if (!state.is_object() || format == state.end() || *format != kFormat || !state.contains("version") ||
      !state["version"].is_number_integer()) {
    problem = path + ":1: not a vnet state file (no \"format\": \"vnet-state\")";
    return std::nullopt;
  }
  if (state["version"] != kVersion) {
    problem = path + ":1: state format version " + state["version"].dump() + " is not one this vnet reads (" +
              std::to_string(kVersion) + ")";
    return std::nullopt;
  }
  if (!state.contains("definitions") || !state["definitions"].is_array() ||
      (state.contains("leases") && !state["leases"].is_object())) {
    problem = path + ":1: \"definitions\" must be a list and \"leases\" an object";
    return std::nullopt;
  }
  return state;
}

namespace {

void write_all(int fd, const std::string& text, const std::string& path) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw UserError(errno_text("cannot write " + path));
    }
    done += static_cast<std::size_t>(n);
  }
}

std::string request_net(const json& request) {
  const std::string cmd = request.value("cmd", "");
  const char* key = cmd == "net_add" || cmd == "net_del" ? "name" : "net";
  auto it = request.find(key);
  return it != request.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string resolve_state_dir(const std::string& flag, const std::string& run_dir, bool run_dir_chosen) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("VNET_STATE_DIR"); env && *env) return env;
  if (run_dir_chosen) return run_dir + "/state";
  if (::geteuid() == 0) return "/var/lib/vnet";
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg) return std::string(xdg) + "/vnet";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.local/state/vnet";
  throw UserError("no state dir: HOME is not set; pass --state-dir DIR");
}

StateStore::StateStore(std::string dir) : dir_(std::move(dir)) {}

StateStore::Loaded StateStore::load() const {
  make_dirs(dir_);
  directory();
  Loaded out;
  const std::string current = path(), previous = current + ".prev";
  std::string problem;
  auto text = read_file(current, problem);
  if (text) {
    if (auto state = parse_state(current, *text, problem)) {
      out.state = std::move(*state);
      return out;
    }
    // Kept for whoever wants to look; the next save writes a fresh state.json.
    ::rename(current.c_str(), (current + ".corrupt").c_str());
  }
  if (!problem.empty()) out.problems.push_back(problem);
  if (!text && problem.empty()) {
    // No state.json: none saved yet, or a crash between the two renames of a save.
  }
  std::string prev_problem;
  auto prev_text = read_file(previous, prev_problem);
  if (prev_text) {
    if (auto state = parse_state(previous, *prev_text, prev_problem)) {
      if (!problem.empty())
        out.problems.push_back("using the previous state " + previous + " (the damaged file is kept as " + current +
                               ".corrupt)");
      out.state = std::move(*state);
      return out;
    }
  }
  if (!prev_problem.empty()) out.problems.push_back(prev_problem);
  if (!out.problems.empty()) out.problems.push_back("starting without saved definitions");
  return out;
}

const UniqueFd& StateStore::directory() const {
  if (!*dir_fd_) {
    *dir_fd_ = UniqueFd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!*dir_fd_) throw UserError(errno_text("cannot open state dir " + dir_));
  }
  return *dir_fd_;
}

// Writes DIR/NAME atomically: NAME.tmp, fsync, rename over NAME.
void StateStore::replace_file(const std::string& name, const std::string& text) const {
  const int dir = directory().get();
  const std::string tmp = name + ".tmp", tmp_path = dir_ + "/" + tmp;
  ::unlinkat(dir, tmp.c_str(), 0);
  UniqueFd fd(::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) throw UserError(errno_text("cannot create " + tmp_path));
  write_all(fd.get(), text, tmp_path);
  if (::fsync(fd.get()) != 0) throw UserError(errno_text("cannot fsync " + tmp_path));
  if (::renameat(dir, tmp.c_str(), dir, name.c_str()) != 0)
    throw UserError(errno_text("cannot rename " + tmp_path + " to " + dir_ + "/" + name));
}

void StateStore::save(const std::string& text, const std::string& previous_text) const {
  // The previous copy comes from memory, not from the file on disk, which
  // may be the damaged one.
  if (!previous_text.empty()) replace_file("state.json.prev", previous_text);
  replace_file("state.json", text);
  ::fsync(directory().get());
}

void StateStore::give_to(uid_t uid, gid_t gid) const {
  const UniqueFd& dir = directory();
  if (::fchown(dir.get(), uid, gid) != 0) throw UserError(errno_text("cannot hand state dir " + dir_ + " to the engine's user"));
  for (const char* name : {"state.json", "state.json.prev", "state.json.tmp", "state.json.prev.tmp"})
    if (::fchownat(dir.get(), name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0 && errno != ENOENT)
      throw UserError(errno_text("cannot hand " + dir_ + "/" + name + " to the engine's user"));
}

Persistence::Persistence(Engine& engine, StateStore store) : engine_(engine), store_(std::move(store)) {}

std::vector<std::string> Persistence::restore(const json& saved) {
  std::vector<std::string> problems;
  const std::string where = store_.path();
  if (!saved.empty()) last_written_ = saved.dump(1) + "\n";  // the good copy becomes state.json.prev
  restoring_ = true;
  if (auto defs = saved.find("definitions"); defs != saved.end() && defs->is_array()) {
    for (const auto& entry : *defs) {
      const json* request = entry.is_object() && entry.contains("request") ? &entry["request"] : nullptr;
      const std::string cmd = request && request->is_object() ? request->value("cmd", "") : "";
      if (cmd != "net_add" && cmd != "port_add" && cmd != "pf_add" && cmd != "bwgroup_add") {
        problems.push_back(where + ": skipped an entry that is not a saved definition: " + entry.dump().substr(0, 200));
        continue;
      }
      const json reply = handle_request(engine_, *request);
      if (reply.value("ok", false)) continue;
      const std::string error = reply.value("error", std::string("failed"));
      if (cmd == "net_add" && engine_.networks().count(request_net(*request))) {
        log::info("state: network {} is declared by the config file, whose definition is used", request_net(*request));
        continue;
      }
      problems.push_back(where + ": could not restore " + cmd + " " + request->dump() + ": " + error +
                         " (kept in the state; remove it with the matching `del` command once it is restored)");
      unrestored_.push_back(entry);
    }
  }
  if (auto leases = saved.find("leases"); leases != saved.end() && leases->is_object()) {
    for (const auto& [net, list] : leases->items()) {
      if (!engine_.networks().count(net)) continue;
      for (const auto& [id, port] : engine_.network(net).ports())
        if (auto* gw = dynamic_cast<nat::NatGateway*>(port.get()))
          if (std::size_t n = gw->dhcp().import_leases(list)) log::info("state: {}: {} DHCP leases restored", net, n);
    }
  }
  restoring_ = false;
  save();
  return problems;
}

void Persistence::record(const json& request, const json& reply) {
  const std::string cmd = request.value("cmd", "");
  const std::string net = request_net(request);
  auto erase_if = [this](auto pred) { std::erase_if(entries_, [&](const json& e) { return pred(e["request"], e); }); };
  if (cmd == "net_add") {
    if (request.value("transient", false)) {
      transient_.insert(net);
      return;
    }
    json saved = request;
    saved.erase("transient");
    entries_.push_back({{"request", saved}});
  } else if (cmd == "net_del") {
    transient_.erase(net);
    erase_if([&](const json& r, const json&) { return request_net(r) == net; });
    std::erase_if(unrestored_, [&](const json& e) { return request_net(e["request"]) == net; });
  } else if (cmd == "port_add" || cmd == "pf_add") {
    if (transient_.count(net)) return;
    json entry = {{"request", request}};
    if (cmd == "port_add") entry["port"] = reply.value("port", 0);
    else entry["name"] = reply.value("name", "");
    entries_.push_back(std::move(entry));
  } else if (cmd == "attach" && reply.contains("tap")) {
    // kernel-nat: the TAP `vnet attach` put in the bridge is a member port,
    // and comes back as one, for the QEMU started with it to find again.
    if (transient_.count(net)) return;
    const json port_add = {{"cmd", "port_add"}, {"net", net}, {"spec", "member,ifname=" + reply["tap"].get<std::string>()}};
    entries_.push_back({{"request", port_add}, {"port", reply.value("port", 0)}});
  } else if (cmd == "port_del") {
    const auto id = request.value("port", 0);
    erase_if([&](const json& r, const json& e) {
      return r["cmd"] == "port_add" && request_net(r) == net && e.value("port", 0) == id;
    });
  } else if (cmd == "port_set") {
    const auto id = request.value("port", 0);
    for (auto& e : entries_) {
      json& r = e["request"];
      if (r["cmd"] != "port_add" || request_net(r) != net || e.value("port", 0) != id) continue;
      // The port comes back with its latest link state, impairments and
      // bandwidth group; "clear" drops the impairments only.
      const bool clear = request.value("clear", false);
      for (std::string_view k : port_setting_keys()) {
        if (k == "clear") continue;
        const std::string key(k);
        if (clear ? k != "link" && k != "bwgroup" : request.contains(key)) r.erase(key);
        if (request.contains(key)) r[key] = request[key];
      }
    }
  } else if (cmd == "bwgroup_add") {
    if (transient_.count(net)) return;
    const std::string name = request.value("name", "");
    auto same_group = [&](const json& e) {
      const json& r = e["request"];
      return r["cmd"] == "bwgroup_add" && request_net(r) == net && r.value("name", "") == name;
    };
    if (auto it = std::find_if(entries_.begin(), entries_.end(), same_group); it != entries_.end()) {
      (*it)["request"] = request;  // a new limit for a saved group
    } else {
      // Before the network's ports, which may name it when they are restored.
      auto first_port = std::find_if(entries_.begin(), entries_.end(), [&](const json& e) {
        return e["request"]["cmd"] != "net_add" && request_net(e["request"]) == net;
      });
      entries_.insert(first_port, json{{"request", request}});
    }
  } else if (cmd == "bwgroup_del") {
    const std::string name = request.value("name", "");
    erase_if([&](const json& r, const json&) {
      return r["cmd"] == "bwgroup_add" && request_net(r) == net && r.value("name", "") == name;
    });
  } else if (cmd == "pf_del") {
    const std::string name = request.value("name", "");
    erase_if([&](const json& r, const json& e) {
      return r["cmd"] == "pf_add" && request_net(r) == net && e.value("name", "") == name;
    });
  } else {
    return;  // reads (status, lists, capture) change nothing
  }
  if (!restoring_) save();
}

json Persistence::snapshot() const {
  json defs = json::array();
  for (const auto& e : entries_) defs.push_back(e);
  for (const auto& e : unrestored_) defs.push_back(e);
  json leases = json::object();
  for (const auto& [name, net] : engine_.networks())
    for (const auto& [id, port] : net->ports())
      if (auto* gw = dynamic_cast<nat::NatGateway*>(port.get()))
        if (json l = gw->dhcp().export_leases(); !l.empty()) leases[name] = std::move(l);
  return {{"format", kFormat}, {"version", kVersion}, {"definitions", defs}, {"leases", leases}};
}

void Persistence::save() {
  const std::string text = snapshot().dump(1) + "\n";
  try {
    store_.save(text, last_written_);
    last_written_ = text;
    last_error_.clear();
    saves_++;
  } catch (const UserError& e) {
    if (last_error_ != e.what()) log::warn("state not saved: {}", e.what());
    last_error_ = e.what();
  }
}

void Persistence::save_if_changed() {
  if (snapshot().dump(1) + "\n" != last_written_) save();
}

json Persistence::status() const {
  json s = {{"dir", store_.dir()}, {"definitions", entries_.size()}, {"saves", saves_}};
  if (!unrestored_.empty()) s["unrestored"] = unrestored_.size();
  if (!last_error_.empty()) s["error"] = last_error_;
  return s;
}

}  // namespace vnet
