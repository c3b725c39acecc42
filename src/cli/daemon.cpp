#include "cli/daemon.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <algorithm>
#include <functional>

#include "cli/attach.hpp"
#include "cli/client.hpp"
#include "control/activation.hpp"
#include "control/config.hpp"
#include "control/request.hpp"
#include "control/metrics.hpp"
#include "control/server.hpp"
#include "control/state.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

namespace vnet::cli {
namespace {

// The run dir holds the control socket, the pid file and the log: another
// user able to write into it could redirect them. An existing one must be
// ours, mode 0700, and not a symlink.
void prepare_run_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    throw UserError(errno_text("cannot create run dir " + dir));
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ELOOP || errno == ENOTDIR)
      throw UserError("run dir " + dir + " is a symlink or not a directory: refusing it (pass --run-dir to a "
                      "directory of your own)");
    throw UserError(errno_text("cannot open run dir " + dir));
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) throw UserError(errno_text("cannot stat run dir " + dir));
  if (st.st_uid != ::geteuid())
    throw UserError("run dir " + dir + " belongs to uid " + std::to_string(st.st_uid) + ", not to you (uid " +
                    std::to_string(::geteuid()) + "): remove it, or pass --run-dir to a directory of your own");
  if ((st.st_mode & 07777) != 0700) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    throw UserError("run dir " + dir + " has mode " + mode + ", must be 0700 so only you can use it: chmod 700 " +
                    dir);
  }
}

// A file the engine writes in the run dir: absent, or a regular file of ours
// (never a symlink someone planted to make us overwrite its target).
void check_own_file(const std::string& path) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid())
    throw UserError(path + " is not a regular file of yours (a symlink?): refusing to write it; remove it");
}

// Opens the daemon's log for appending, refusing symlinks and others' files.
UniqueFd open_log(const std::string& path) {
  check_own_file(path);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) throw UserError(errno_text("cannot open log " + path));
  return fd;
}

// A pid file left by an engine that died: removed, unless its pid is still a
// vnet process (starting up, or not answering).
void clear_stale_pid_file(const std::string& path) {
  check_own_file(path);
  std::ifstream in(path);
  if (!in) return;
  long pid = 0;
  in >> pid;
  if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) == 0) {
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(comm, name);
    if (name == "vnet")
      throw UserError("vnet (pid " + std::to_string(pid) + ") still holds " + path +
                      " but does not answer: stop it, or remove the pid file");
  }
  ::unlink(path.c_str());
}

// Every fd is a guest connection, a flow or a listener: take all the kernel allows.
std::uint64_t raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised{lim.rlim_max, lim.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur;
}

SocketAccess socket_access_for(const std::string& group) {
  SocketAccess access;
  if (group.empty()) return access;
  errno = 0;
  const ::group* gr = ::getgrnam(group.c_str());
  if (!gr) throw UserError("--group " + group + ": no such group");
  access.group = gr->gr_gid;
  return access;
}

// With no config file: the NAT network "default" (QEMU's user-mode layout:
// 10.0.2.0/24, gateway .2, DNS .3, first lease .15) and a QEMU stream socket.
Config default_config(const std::string& run_dir) {
  Config c;
  c.requests.push_back({{"cmd", "net_add"}, {"name", "default"}, {"mode", "nat"}});
  c.requests.push_back({{"cmd", "port_add"},
                        {"net", "default"},
                        {"spec", "stream,server=on,addr.type=unix,addr.path=" + run_dir + "/default.sock"}});
  return c;
}

class PidFile {
 public:
  // O_EXCL: a file someone created (or linked) since the stale check is an error, never overwritten.
  explicit PidFile(std::string path) : path_(std::move(path)) {
    UniqueFd fd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) throw UserError(errno_text("cannot create pid file " + path_));
    const std::string text = std::to_string(::getpid()) + "\n";
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      throw UserError(errno_text("cannot write pid file " + path_));
  }
  ~PidFile() { ::unlink(path_.c_str()); }
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

 private:
  std::string path_;
};

// systemd's readiness protocol (sd_notify(3)): one datagram of KEY=VALUE
// lines to the unix socket named by $NOTIFY_SOCKET ("@..." is abstract).
// Without the variable this does nothing. The socket is opened once, before
// the sandbox, and the variable removed so that children do not inherit it.
class ServiceNotifier {
 public:
  ServiceNotifier() {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path || (path[0] != '/' && path[0] != '@')) return;
    std::string p = path;
    if (p[0] == '@') p[0] = '\0';
    if (p.size() >= sizeof(sockaddr_un::sun_path)) return;
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    addr_.sun_family = AF_UNIX;
    std::memcpy(addr_.sun_path, p.data(), p.size());
    addr_len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + p.size());
    ::unsetenv("NOTIFY_SOCKET");
    // Connected now, while we may still reach it: an engine that drops
    // root may not name a socket in root's directories later.
    connected_ = ::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&addr_), addr_len_) == 0;
  }
  void send(const std::string& message) {
    if (!fd_) return;
    const auto* to = connected_ ? nullptr : reinterpret_cast<const sockaddr*>(&addr_);
    if (::sendto(fd_.get(), message.data(), message.size(), MSG_NOSIGNAL, to, connected_ ? 0 : addr_len_) < 0)
      log::warn("{}", errno_text("cannot notify the service manager"));
  }

 private:
  UniqueFd fd_;
  sockaddr_un addr_{};
  socklen_t addr_len_ = 0;
  bool connected_ = false;
};

// How long the loop runs after a stop request to send what closing the
// guests' connections queued.
constexpr Nanos kShutdownDrain = 100 * kMillis;
// How often leases are checked for changes worth saving.
constexpr Nanos kStateSaveInterval = 5 * kSeconds;

// Builds everything, calls ready() with what could not be restored, then
// runs until `vnet down` or a signal, and saves the state on the way out.
// `activated`: the control socket a service manager passed (empty: bind one).
void run_engine(const UpOptions& options, const Config& config, const SocketAccess& access, const StateStore& store,
                const nlohmann::json& saved, UniqueFd activated,
                const std::function<void(Engine&, const std::vector<std::string>&)>& ready) {
  if (log::use_journal_format_if_stderr_is_journal()) log::debug("logging to the journal with priorities");
  ServiceNotifier notifier;
  const std::string& run_dir = options.run_dir;
  EventLoop loop;
  loop.set_busy_poll(options.busy_poll);
  Engine engine(loop);
  engine.host().nofile_limit = raise_fd_limit();
  log::info("fd limit (RLIMIT_NOFILE) {}", engine.host().nofile_limit);
  engine.set_socket_access(access);
  apply_config(engine, config);  // the file first: what it declares is not saved state
  Persistence persistence(engine, store);
  engine.set_persistence(&persistence);
  const std::vector<std::string> problems = persistence.restore(saved);
  for (const auto& p : problems) log::warn("{}", p);
  std::unique_ptr<Timer> save_timer;
  save_timer = std::make_unique<Timer>(loop, [&] {
    persistence.save_if_changed();
    save_timer->arm_in(kStateSaveInterval);
  });
  save_timer->arm_in(kStateSaveInterval);
  const std::string control_path = control_socket_path(run_dir);
  auto server = activated ? std::make_unique<ControlServer>(engine, control_path, std::move(activated))
                          : std::make_unique<ControlServer>(engine, control_path);
  std::unique_ptr<MetricsServer> metrics;
  if (!options.metrics_addr.empty()) metrics = std::make_unique<MetricsServer>(loop, engine, options.metrics_addr);
  PidFile pid(run_dir + "/vnet.pid");
  // Start-up opens are done: from here on the engine runs unprivileged.
  privsep::SandboxOptions sandboxed = options.sandbox;
  if (server->socket_is_managers()) sandboxed.keep_files.push_back("control.sock");
  auto sandbox = privsep::enter_sandbox(sandboxed, run_dir, access.group);
  loop.handle_termination([&loop](int signo) {
    log::info("signal {}: shutting down", signo);
    loop.stop();
  });
  log::info("vnet ready (run dir {}, pid {})", run_dir, ::getpid());
  ready(engine, problems);
  // The control socket listens (ControlServer) and the loop that answers it
  // starts below: the first thing it does is tell the service manager.
  Timer notify_ready(loop, [&] {
    notifier.send("READY=1\nSTATUS=serving, run dir " + run_dir + "\nMAINPID=" + std::to_string(::getpid()));
  });
  notify_ready.arm_in(0);
  loop.run();
  notifier.send("STOPPING=1");
  // Guests' TCP connections are reset rather than left to time out; a short
  // last run of the loop carries the RSTs out through the ports.
  engine.close_guest_flows();
  Timer drained(loop, [&loop] { loop.stop(); });
  drained.arm_in(kShutdownDrain);
  loop.run();
  persistence.save();
  engine.set_persistence(nullptr);
  // Bridges, nftables tables and TAPs made for the root-only modes go while
  // the privileged helper that can remove them is still there.
  engine.remove_networks();
  log::info("vnet stopped (state saved in {})", store.dir());
}

// What `vnet up` says once the engine is ready: each network, and for each
// one guests can connect to, the options for a first guest (with a MAC of its
// own, as `vnet attach` gives). `call` sends one control request.
void print_banner(const std::function<nlohmann::json(const nlohmann::json&)>& call) {
  auto status = call({{"cmd", "status"}});
  for (const auto& net : status["networks"]) {
    std::string mode = net["mode"];
    if (const auto& nat = net["nat"]; nat.is_object())
      mode += " " + nat.value("net", "") + ", gateway " + nat.value("router", nat.value("gateway", "")) + ", dns " +
              nat.value("dns", "");
    const std::string name = net["name"];
    std::printf("network %s (%s)\n", name.c_str(), mode.c_str());
    if (net["mode"] == "kernel-nat") {
      std::printf("  attach QEMU guests with the options `vnet attach %s` prints (each gets a TAP in bridge vn-%s)\n",
                  name.c_str(), name.c_str());
      continue;
    }
    const bool listens = std::any_of(net["ports"].begin(), net["ports"].end(),
                                     [](const nlohmann::json& p) { return p["kind"] == "stream-listen"; });
    if (!listens) continue;
    auto reply = call({{"cmd", "attach"}, {"net", name}});
    if (!reply.value("ok", false)) continue;
    std::printf("  attach a QEMU guest with (`vnet attach %s` prints one more, each with its own MAC):\n"
                "    qemu-system-x86_64 ... %s",
                name.c_str(), attach_text(reply, AttachFormat::Qemu).c_str());
  }
  std::printf("see `vnet status`; stop with `vnet down`\n");
  std::fflush(stdout);
}

}  // namespace

int run_up(const UpOptions& options) {
  // Files and sockets the engine creates are its owner's alone unless a
  // mode says otherwise (see SocketAccess), whatever umask we were given.
  ::umask(077);
  prepare_run_dir(options.run_dir);
  // Taken first: with a socket from the service manager, a client may be
  // waiting on it already, and asking "is an engine running?" on it would
  // wait for ourselves.
  UniqueFd activated = take_activated_control_socket(control_socket_path(options.run_dir));
  if (!activated && engine_running(options.run_dir))
    throw UserError("vnet is already running in " + options.run_dir + " (stop it with `vnet down`)");
  clear_stale_pid_file(options.run_dir + "/vnet.pid");
  const SocketAccess access = socket_access_for(options.socket_group);
  Config config = options.config_path.empty() ? default_config(options.run_dir) : load_config_file(options.config_path);
  const StateStore store(options.state_dir);
  StateStore::Loaded saved = store.load();
  for (const auto& p : saved.problems) std::fprintf(stderr, "vnet: state: %s\n", p.c_str());
  // An engine that drops root keeps saving into its state dir.
  if (const auto name = privsep::engine_user(options.sandbox)) {
    const auto user = isolation::lookup_user(*name);
    if (user.uid != 0) store.give_to(user.uid, user.gid);
  }
  std::string level = !options.log_level.empty() ? options.log_level : config.log_level;
  if (!level.empty()) {
    auto lv = log::parse_level(level);
    if (!lv) throw UserError("log level '" + level + "': expected debug, info, warn or error");
    log::set_level(*lv);
  }

  if (options.foreground) {
    run_engine(options, config, access, store, saved.state,
               std::move(activated), [&](Engine& engine, const auto& problems) {
      for (const auto& p : problems) std::fprintf(stderr, "vnet: state: %s\n", p.c_str());
      std::printf("vnet is up in the foreground (run dir %s); Ctrl-C stops it\n", options.run_dir.c_str());
      print_banner([&engine](const nlohmann::json& req) { return handle_request(engine, req); });
    });
    return 0;
  }

  UniqueFd log_fd = open_log(options.run_dir + "/vnet.log");
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw UserError(errno_text("pipe"));
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  pid_t pid = ::fork();
  if (pid < 0) throw UserError(errno_text("fork"));
  if (pid == 0) {
    read_end.reset();
    ::setsid();
    int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(null_fd, STDOUT_FILENO);
    ::dup2(log_fd.get(), STDERR_FILENO);
    log_fd.reset();
    int status = 0;
    try {
      run_engine(options, config, access, store, saved.state,
                 std::move(activated), [&](Engine&, const auto& problems) {
        std::string ok = "OK";
        for (const auto& p : problems) ok += "\n" + p;
        [[maybe_unused]] auto n = ::write(write_end.get(), ok.data(), ok.size());
        write_end.reset();
      });
    } catch (const std::exception& e) {
      log::error("{}", e.what());
      std::string msg = e.what();
      if (write_end) [[maybe_unused]] auto n = ::write(write_end.get(), msg.data(), msg.size());
      status = 1;
    }
    ::_exit(status);
  }
  write_end.reset();
  std::string answer;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(read_end.get(), buf, sizeof buf)) > 0) answer.append(buf, static_cast<std::size_t>(n));
  if (answer.rfind("OK", 0) != 0) {
    ::waitpid(pid, nullptr, 0);
    throw UserError(answer.empty() ? "vnet failed to start; see " + options.run_dir + "/vnet.log" : answer);
  }
  // Lines after OK: saved definitions that could not be restored.
  for (std::size_t pos = answer.find('\n'); pos != std::string::npos;) {
    const std::size_t end = answer.find('\n', pos + 1);
    std::fprintf(stderr, "vnet: state: %s\n", answer.substr(pos + 1, end == std::string::npos ? end : end - pos - 1).c_str());
    pos = end;
  }
  std::printf("vnet is up (run dir %s)\n", options.run_dir.c_str());
  ControlClient client(options.run_dir);
  print_banner([&client](const nlohmann::json& req) -> nlohmann::json {
    try {
      return client.call(req);
    } catch (const UserError& e) {
      return {{"ok", false}, {"error", e.what()}};
    }
  });
  return 0;
}

}  // namespace vnet::cli
