// vnet: user-space virtual networks for VMs. The CLI is a thin client of the
// engine's control socket, plus `up`, which runs the engine.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "cli/attach.hpp"
#include "cli/client.hpp"
#include "cli/daemon.hpp"
#include "cli/status_view.hpp"
#include "cli/ui.hpp"
#include "control/option_schema.hpp"
#include "control/state.hpp"
#include "core/edit_distance.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "fabric/impairment.hpp"

namespace {

using nlohmann::json;
using vnet::UserError;
using vnet::cli::ControlClient;

// Command-line flags made from an option schema (control/option_schema):
// the values given, turned into the request fields of the same names.
class SchemaFlags {
 public:
  explicit SchemaFlags(const std::vector<vnet::OptionSpec>& schema) : schema_(schema) {}

  void add_to(CLI::App* cmd) {
    using vnet::OptionType;
    for (const auto& o : schema_) {
      const std::string flag(o.flag), help(o.help);
      CLI::Option* opt = nullptr;
      switch (o.type) {
        case OptionType::Flag: opt = cmd->add_flag(flag, flags_[o.key], help); break;
        case OptionType::List: opt = cmd->add_option(flag, lists_[o.key], help); break;
        case OptionType::Count: opt = cmd->add_option(flag, counts_[o.key], help); break;
        case OptionType::Choice:
          opt = cmd->add_option(flag, texts_[o.key], help)
                    ->check(CLI::IsMember(std::vector<std::string>(o.choices.begin(), o.choices.end())));
          break;
        case OptionType::Text: opt = cmd->add_option(flag, texts_[o.key], help); break;
      }
      options_.emplace_back(o.key, opt);
    }
  }

  // The flags given (on any of the subcommands they were added to).
  void fill(json& req) const {
    for (const auto& [key, opt] : options_) {
      if (opt->count() == 0) continue;
      const std::string k(key);
      if (auto f = flags_.find(key); f != flags_.end()) req[k] = f->second;
      else if (auto l = lists_.find(key); l != lists_.end()) req[k] = l->second;
      else if (auto c = counts_.find(key); c != counts_.end()) req[k] = c->second;
      else req[k] = texts_.at(key);
    }
  }

 private:
  const std::vector<vnet::OptionSpec>& schema_;
  std::vector<std::pair<std::string_view, CLI::Option*>> options_;
  std::map<std::string_view, std::string> texts_;
  std::map<std::string_view, std::vector<std::string>> lists_;
  std::map<std::string_view, std::uint64_t> counts_;
  std::map<std::string_view, bool> flags_;
};

std::uint64_t parse_port_id(const std::string& text) {
  try {
    std::size_t used = 0;
    unsigned long v = std::stoul(text, &used);
    if (used == text.size() && v > 0) return v;
  } catch (const std::exception&) {
  }
  throw UserError("port id '" + text + "': expected a positive number (see `vnet status`)");
}

// The guest kit (guest/ in the source tree): $VNET_GUEST_KIT, else beside
// the binary as installed (PREFIX/bin/vnet -> PREFIX/share/vnet/guest) or as
// built (build/vnet -> guest/).
std::string find_guest_kit(const std::string& exe) {
  if (const char* env = std::getenv("VNET_GUEST_KIT"); env && *env) return env;
  const std::string bin_dir = exe.substr(0, exe.rfind('/'));
  for (const std::string& dir : {bin_dir + "/../share/vnet/guest", bin_dir + "/../guest"})
    if (::access((dir + "/demo.py").c_str(), R_OK) == 0) return dir;
  throw UserError("the guest kit is not installed next to " + exe +
                  " (scripts/quickstart installs it; or set VNET_GUEST_KIT to the source tree's guest/ directory)");
}

// `vnet demo ARGS`: the kit's demo script, told which vnet and run dir to use.
int run_demo(const std::string& run_dir, const std::vector<std::string>& args) {
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) throw UserError("cannot find the vnet binary's own path (/proc/self/exe)");
  exe[n] = '\0';
  const std::string script = find_guest_kit(exe) + "/demo.py";
  std::vector<std::string> argv = {"python3", script, "--vnet", exe, "--run-dir", run_dir};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  ::execvp("python3", cargv.data());
  throw UserError(std::string("cannot run python3 for the demo: ") + std::strerror(errno) +
                  " (apt-get install -y python3)");
}

// Streams a live capture to stdout (or a file) until the reader or vnet stops.
int run_capture(const std::string& run_dir, const std::string& net, const std::string& out_path) {
  ControlClient client(run_dir);
  client.call({{"cmd", "capture"}, {"net", net}});
  int out = STDOUT_FILENO;
  vnet::UniqueFd file;
  if (!out_path.empty() && out_path != "-") {
    file.reset(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!file) throw UserError(vnet::errno_text("cannot write " + out_path));
    out = file.get();
  }
  if (isatty(out)) throw UserError("capture output is binary pcap: pipe it (`| tcpdump -n -r -`) or use -w FILE");
  std::signal(SIGPIPE, SIG_IGN);
  std::string pending = client.take_buffered();
  char buf[65536];
  for (;;) {
    if (!pending.empty()) {
      if (::write(out, pending.data(), pending.size()) < 0) return 0;  // reader gone
      pending.clear();
    }
    ssize_t n = ::read(client.fd(), buf, sizeof buf);
    if (n <= 0) return 0;
    pending.assign(buf, static_cast<std::size_t>(n));
  }
}

// CLI11 answers a mistyped subcommand with "A subcommand is required" (or an
// "arguments not expected" list): name the word and the nearest command
// instead. Walks the words that select subcommands (`vnet net ad x`), skipping
// options and their values.
void check_command_words(const CLI::App& app, int argc, char** argv) {
  const CLI::App* level = &app;
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") return;
    if (!word.empty() && word[0] == '-') {
      // An option of this level that takes a value consumes the next word.
      if (word.find('=') == std::string::npos) {
        const CLI::Option* opt = nullptr;
        try {
          opt = level->get_option_no_throw(word);
        } catch (...) {
        }
        if (opt && opt->get_type_size() != 0) ++i;
      }
      continue;
    }
    const auto subs = level->get_subcommands([](const CLI::App*) { return true; });
    if (subs.empty()) return;  // positionals from here on
    const CLI::App* next = nullptr;
    std::string best;
    std::size_t best_distance = 3;  // at most two edits away counts as a typo
    for (const CLI::App* sub : subs) {
      if (sub->check_name(word)) next = sub;
      const std::size_t d = vnet::edit_distance(word, sub->get_name());
      if (d < best_distance) best_distance = d, best = sub->get_name();
    }
    if (!next) {
      std::string names;
      for (const CLI::App* sub : subs) names += (names.empty() ? "" : ", ") + sub->get_name();
      throw UserError("unknown command '" + word + "'" + (best.empty() ? "" : " (did you mean '" + best + "'?)") +
                      "; commands: " + names);
    }
    level = next;
  }
}

int run(int argc, char** argv) {
  CLI::App app{"vnet: virtual networks for VMs and containers, in user space.\n"
               "Start with `vnet up`, attach QEMU guests with -netdev stream/dgram/socket, see `vnet status`."};
  app.require_subcommand(1);
  std::string run_dir_flag;
  app.add_option("--run-dir", run_dir_flag,
                 "Engine state directory, owned by you with mode 0700 (default: $VNET_RUN_DIR, /run/vnet for root, "
                 "else $XDG_RUNTIME_DIR/vnet)");
  bool json_out = false;

  vnet::cli::UpOptions up_opts;
  auto* up = app.add_subcommand("up", "Start the engine (with no config: network 'default' and a QEMU socket)");
  up->add_option("--config", up_opts.config_path, "TOML file declaring networks and ports")->check(CLI::ExistingFile);
  up->add_flag("--foreground", up_opts.foreground, "Stay in the foreground and log to stderr");
  up->add_option("--log-level", up_opts.log_level, "debug, info, warn or error");
  up->add_option("--user", up_opts.sandbox.user,
                 "As root: the unprivileged user the engine runs as, with a privileged helper for TAPs and root's "
                 "directories (default auto: vnet if it exists, else nobody; root: keep root, for debugging)");
  std::string seccomp_mode = "on";
  up->add_option("--seccomp", seccomp_mode,
                 "System call filter: on (unlisted calls fail with EPERM), log (allowed but logged by the kernel), "
                 "off")
      ->check(CLI::IsMember({"on", "log", "off"}));
  up->add_option("--allow-path", up_opts.sandbox.allow_paths,
                 "As root: a directory (besides the run dir) where the privileged helper may create sockets and "
                 "capture files for the engine (repeatable)");
  up->add_option("--group", up_opts.socket_group,
                 "Let this group's members attach guests: unix sockets made for guests get mode 0660 and this "
                 "group (default: 0600, the owner only; the control socket stays owner-only)");
  up->add_option("--state-dir", up_opts.state_dir,
                 "Where networks, ports, forwards and DHCP leases added at runtime are saved and restored from "
                 "(default: $VNET_STATE_DIR; RUN_DIR/state with --run-dir or $VNET_RUN_DIR; /var/lib/vnet for root; "
                 "else $XDG_STATE_HOME/vnet or ~/.local/state/vnet)");
  up->add_option("--metrics", up_opts.metrics_addr,
                 "Serve Prometheus metrics at http://ADDR/metrics; ADDR is a loopback address and port, e.g. "
                 "127.0.0.1:9477 (same text as `vnet metrics`)");
  up->add_option("--allow-port", up_opts.sandbox.allow_ports,
                 "As root with --user: a port below 1024 the privileged helper may bind for the engine (repeatable)")
      ->check(CLI::Range(1, 1023));
  std::string busy_poll = "50us";
  up->add_option("--busy-poll", busy_poll,
                 "After handling small packets, keep polling up to this long before sleeping, so the next packet of an "
                 "exchange does not wait for a wake-up (the window adapts; not after bulk data, nor while other work "
                 "wants the CPU; 0: off)")
      ->capture_default_str();
  up->add_option("--allow-if", up_opts.sandbox.allow_interfaces,
                 "As root with --user: a host interface the privileged helper may hand to the engine, as a bridged "
                 "network's --uplink or a kernel-nat network's member (repeatable; vn-... interfaces vnet makes "
                 "itself need none)");

  auto* down = app.add_subcommand("down", "Stop the engine");

  std::string attach_net;
  bool attach_libvirt = false, attach_qemu = false;
  auto* attach = app.add_subcommand(
      "attach", "Print what one more guest needs to join NET: QEMU options (default) or a libvirt <interface>, "
                "each time with a MAC of its own");
  attach->add_option("net", attach_net, "Network (default: default)");
  auto* attach_qemu_flag = attach->add_flag("--qemu", attach_qemu, "QEMU -netdev/-device options (the default)");
  attach->add_flag("--libvirt", attach_libvirt, "A libvirt domain XML <interface> element")->excludes(attach_qemu_flag);

  auto* demo = app.add_subcommand("demo", "Boot a tiny real guest (QEMU, the Debian kernel, busybox) on a running "
                                          "network and show it get a lease, ping, resolve and fetch; "
                                          "`vnet demo --help` for its options");
  demo->prefix_command();  // everything after `demo` is the demo's own
  demo->set_help_flag();

  std::string status_net;
  auto* status = app.add_subcommand("status", "Networks, ports, learned MACs and counters");
  status->add_option("net", status_net, "Only this network");
  status->add_flag("--json", json_out, "Machine-readable output");
  double watch_seconds = 0;
  status->add_option("--watch", watch_seconds,
                     "Refresh every N seconds (e.g. --watch 2) with receive and send rates per port; Ctrl-C stops")
      ->check(CLI::Range(0.2, 3600.0));

  auto* metrics = app.add_subcommand(
      "metrics", "Counters in the Prometheus text format: per port frames, bytes and drops by cause; NAT flows, leases, "
                 "forward connections");

  vnet::cli::UiOptions ui_opts;
  auto* ui = app.add_subcommand(
      "ui", "Serve a live topology page on loopback (networks, ports, guests, counters, throughput; link up/down and "
            "port forwards from the page); prints the URL with its access token");
  ui->add_option("--listen", ui_opts.listen, "Loopback address and port to serve on (port 0: any free port)")
      ->capture_default_str();

  auto* net = app.add_subcommand("net", "Manage networks");
  net->require_subcommand(1);
  std::string net_name;
  auto* net_add = net->add_subcommand("add", "Add a network");
  net_add->add_option("name", net_name, "Network name")->required();
  SchemaFlags net_flags(vnet::network_option_schema());
  net_flags.add_to(net_add);
  bool transient = false;
  net_add->add_flag("--transient", transient,
                    "Do not save this network (nor its ports and forwards): it is gone after `vnet down; vnet up`");
  auto* net_del = net->add_subcommand("del", "Delete a network and its ports");
  net_del->add_option("name", net_name, "Network name")->required();
  auto* net_list = net->add_subcommand("list", "List networks");
  net_list->add_flag("--json", json_out, "Machine-readable output");

  auto* port = app.add_subcommand("port", "Manage ports");
  port->require_subcommand(1);
  std::string port_net, port_spec, port_id;
  SchemaFlags imp(vnet::port_setting_schema());
  auto* port_add = port->add_subcommand(
      "add", "Add a port; prints its id. SPEC uses QEMU's -netdev syntax, e.g.\n"
             "  stream,server=on,addr.type=unix,addr.path=P    socket,listen=:1234    socket,connect=H:N\n"
             "  socket,mcast=230.0.0.1:1234,localaddr=127.0.0.1\n"
             "  dgram,local.type=unix,local.path=A,remote.type=unix,remote.path=B\n"
             "  udp-tunnel,local=H:P,remote=H:P (VirtualBox's UDP Tunnel: one datagram per frame)\n"
             "  tap,ifname=tap0[,netns=NS]    pcap,file=out.pcap    (any: ,vlan=N access  ,trunk=10:20|all)\n"
             "  vde,dir=DIR (a VDE switch for -netdev vde,sock=DIR)    vde,connect=DIR (plug into a vde_switch)\n"
             "  vxlan,vni=N,remote=H[:P][,remote=...][,local=H:P]    vxlan,vni=N,group=G[:P],dev=IF (RFC 7348, port 4789)\n"
             "  vhost-user,path=SOCK[,server=on|off] (QEMU -chardev socket,path=SOCK -netdev vhost-user; shared memory)");
  port_add->add_option("net", port_net, "Network")->required();
  port_add->add_option("spec", port_spec, "Port spec")->required();
  imp.add_to(port_add);
  auto* port_del = port->add_subcommand("del", "Remove a port (and connections it accepted)");
  port_del->add_option("net", port_net, "Network")->required();
  port_del->add_option("port", port_id, "Port id")->required();
  auto* port_set = port->add_subcommand("set", "Change link state and impairments of a port");
  port_set->add_option("net", port_net, "Network")->required();
  port_set->add_option("port", port_id, "Port id")->required();
  imp.add_to(port_set);

  std::string capture_net, capture_file;
  auto* capture = app.add_subcommand("capture", "Stream a network's frames as pcap (e.g. | tcpdump -n -r -)");
  capture->add_option("net", capture_net, "Network")->required();
  capture->add_option("-w,--write", capture_file, "Write to FILE instead of stdout");

  auto* pf = app.add_subcommand("pf", "Port forwards into a nat network (host socket -> guest)");
  pf->require_subcommand(1);
  std::string pf_net, pf_arg;
  auto* pf_add = pf->add_subcommand(
      "add", "Add a forward; prints its name. RULE is QEMU's hostfwd or VirtualBox's natpf form, e.g.\n"
             "  tcp:127.0.0.1:2222-:22    udp::5353-10.0.2.15:53    ssh:tcp:[127.0.0.1]:2222:[10.0.2.15]:22\n"
             "  (host address default 127.0.0.1; guest address default: the first DHCP address)");
  pf_add->add_option("net", pf_net, "Network")->required();
  pf_add->add_option("rule", pf_arg, "Forward rule")->required();
  auto* pf_del = pf->add_subcommand("del", "Remove a forward (established connections go on)");
  pf_del->add_option("net", pf_net, "Network")->required();
  pf_del->add_option("name", pf_arg, "Forward name (see `vnet pf list`)")->required();
  auto* pf_list = pf->add_subcommand("list", "List a network's forwards");
  pf_list->add_option("net", pf_net, "Network")->required();
  pf_list->add_flag("--json", json_out, "Machine-readable output");

  auto* bw = app.add_subcommand("bwgroup", "Bandwidth groups: ports of a network sharing one rate limit "
                                            "(VirtualBox's bandwidthctl)");
  bw->require_subcommand(1);
  std::string bw_net, bw_name, bw_rate, bw_burst;
  auto* bw_add = bw->add_subcommand("add", "Add a group, or give an existing one a new limit; then put ports in it "
                                           "with `vnet port set NET ID --bwgroup NAME`");
  bw_add->add_option("net", bw_net, "Network")->required();
  bw_add->add_option("name", bw_name, "Group name (letters, digits, - and _)")->required();
  bw_add->add_option("--rate", bw_rate, "The members' combined limit per direction, e.g. 10mbit")->required();
  bw_add->add_option("--burst", bw_burst, "Token bucket size, e.g. 32k (default: one frame)");
  auto* bw_del = bw->add_subcommand("del", "Remove a group that holds no ports");
  bw_del->add_option("net", bw_net, "Network")->required();
  bw_del->add_option("name", bw_name, "Group name")->required();
  auto* bw_list = bw->add_subcommand("list", "List a network's groups and their ports");
  bw_list->add_option("net", bw_net, "Network")->required();
  bw_list->add_flag("--json", json_out, "Machine-readable output");

  check_command_words(app, argc, argv);
  CLI11_PARSE(app, argc, argv);
  const std::string run_dir = vnet::cli::resolve_run_dir(run_dir_flag);

  if (*up) {
    up_opts.run_dir = run_dir;
    const char* run_dir_env = std::getenv("VNET_RUN_DIR");
    up_opts.state_dir =
        vnet::resolve_state_dir(up_opts.state_dir, run_dir, !run_dir_flag.empty() || (run_dir_env && *run_dir_env));
    up_opts.sandbox.seccomp = *vnet::isolation::parse_seccomp_mode(seccomp_mode);
    const auto poll = vnet::parse_duration(busy_poll);
    if (!poll || *poll < 0 || *poll > vnet::kMillis)
      throw vnet::UserError("--busy-poll " + busy_poll + ": expected a duration up to 1ms, e.g. 50us (0: off)");
    up_opts.busy_poll = *poll;
    return vnet::cli::run_up(up_opts);
  }
  if (*capture) return run_capture(run_dir, capture_net, capture_file);
  if (*demo) return run_demo(run_dir, demo->remaining());
  if (*ui) {
    ui_opts.run_dir = run_dir;
    return vnet::cli::run_ui(ui_opts);
  }

  ControlClient client(run_dir);
  if (*down) {
    const pid_t pid = vnet::cli::engine_pid(run_dir);
    client.call({{"cmd", "shutdown"}});
    // Wait for the engine to exit and let go of its sockets (it saves its
    // state on the way), so `vnet up` can follow at once.
    for (int i = 0; i < 100 && (vnet::cli::engine_running(run_dir) || vnet::cli::process_alive(pid)); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    fmt::print("vnet stopped\n");
    return 0;
  }
  if (*attach) {
    auto reply = client.call({{"cmd", "attach"}, {"net", attach_net.empty() ? "default" : attach_net}});
    fmt::print("{}", vnet::cli::attach_text(reply, attach_libvirt ? vnet::cli::AttachFormat::Libvirt
                                                                  : vnet::cli::AttachFormat::Qemu));
    return 0;
  }
  if (*status) {
    json req = {{"cmd", "status"}};
    if (!status_net.empty()) req["net"] = status_net;
    auto reply = client.call(req);
    reply.erase("ok");
    if (watch_seconds > 0) {
      // Clear the terminal and redraw: the table, then rates since the last refresh.
      for (json previous;;) {
        fmt::print("\033[H\033[2J{}", vnet::cli::render_status(reply));
        if (!previous.is_null()) fmt::print("\n{}", vnet::cli::render_rates(previous, reply, watch_seconds));
        std::fflush(stdout);
        std::this_thread::sleep_for(std::chrono::duration<double>(watch_seconds));
        previous = std::move(reply);
        reply = client.call(req);
        reply.erase("ok");
      }
    }
    fmt::print("{}", json_out ? reply.dump(2) + "\n" : vnet::cli::render_status(reply));
    return 0;
  }
  if (*metrics) {
    fmt::print("{}", client.call({{"cmd", "metrics"}})["text"].get<std::string>());
    return 0;
  }
  if (*net_add) {
    json req = {{"cmd", "net_add"}, {"name", net_name}};
    net_flags.fill(req);
    if (transient) req["transient"] = true;
    client.call(req);
    return 0;
  }
  if (*net_del) {
    client.call({{"cmd", "net_del"}, {"name", net_name}});
    return 0;
  }
  if (*net_list) {
    auto reply = client.call({{"cmd", "net_list"}});
    if (json_out) {
      fmt::print("{}\n", reply["networks"].dump(2));
    } else {
      for (const auto& n : reply["networks"])
        fmt::print("{:<16} {:<7} {} ports\n", n["name"].get<std::string>(), n["mode"].get<std::string>(),
                   n["ports"].get<int>());
    }
    return 0;
  }
  if (*port_add) {
    json req = {{"cmd", "port_add"}, {"net", port_net}, {"spec", port_spec}};
    imp.fill(req);
    auto reply = client.call(req);
    fmt::print("{}\n", reply["port"].get<std::uint64_t>());
    return 0;
  }
  if (*port_del) {
    client.call({{"cmd", "port_del"}, {"net", port_net}, {"port", parse_port_id(port_id)}});
    return 0;
  }
  if (*port_set) {
    json req = {{"cmd", "port_set"}, {"net", port_net}, {"port", parse_port_id(port_id)}};
    imp.fill(req);
    client.call(req);
    return 0;
  }
  if (*bw_add) {
    json req = {{"cmd", "bwgroup_add"}, {"net", bw_net}, {"name", bw_name}, {"rate", bw_rate}};
    if (!bw_burst.empty()) req["burst"] = bw_burst;
    client.call(req);
    return 0;
  }
  if (*bw_del) {
    client.call({{"cmd", "bwgroup_del"}, {"net", bw_net}, {"name", bw_name}});
    return 0;
  }
  if (*bw_list) {
    auto reply = client.call({{"cmd", "status"}, {"net", bw_net}});
    const json groups = reply["networks"][0].value("bwgroups", json::array());
    if (json_out) {
      fmt::print("{}\n", groups.dump(2));
    } else {
      for (const auto& g : groups) {
        std::string ports;
        for (const auto& id : g["ports"]) ports += (ports.empty() ? "" : ",") + std::to_string(id.get<int>());
        fmt::print("{:<16} {} bit/s  ports {}\n", g["name"].get<std::string>(), g["rate_bps"].get<std::uint64_t>(),
                   ports.empty() ? "-" : ports);
      }
    }
    return 0;
  }
  if (*pf_add) {
    auto reply = client.call({{"cmd", "pf_add"}, {"net", pf_net}, {"rule", pf_arg}});
    fmt::print("{}\n", reply["name"].get<std::string>());
    return 0;
  }
  if (*pf_del) {
    client.call({{"cmd", "pf_del"}, {"net", pf_net}, {"name", pf_arg}});
    return 0;
  }
  if (*pf_list) {
    auto reply = client.call({{"cmd", "pf_list"}, {"net", pf_net}});
    if (json_out) {
      fmt::print("{}\n", reply["forwards"].dump(2));
    } else {
      for (const auto& f : reply["forwards"]) {
        const bool tcp = f["proto"] == "tcp";
        fmt::print("{:<16} {} {:<21} -> {:<21} {} {}\n", f["name"].get<std::string>(), f["proto"].get<std::string>(),
                   f["host"].get<std::string>(), f["guest"].get<std::string>(),
                   f.value(tcp ? "connections" : "datagrams", std::uint64_t{0}), tcp ? "connections" : "datagrams");
      }
    }
    return 0;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "vnet: {}\n", e.what());
    return 1;
  }
}
