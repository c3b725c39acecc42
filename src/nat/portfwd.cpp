// Port forwarding: host sockets whose traffic the NAT hands to a guest.
//
// Theory of operation: each rule owns one host socket, registered with the
// event loop. A TCP rule listens; each accepted connection goes to the TCP
// translator (open_inbound), which opens the connection to guest:port with
// the client's address as source (loopback clients appear as the gateway)
// and owns it from then on, so removing the rule only closes the listener:
// new connections are refused, established ones go on. A UDP rule's socket
// receives datagrams and hands each to the UDP translator (inbound), which
// keeps a flow per client and sends the guest's replies back through the
// same socket; removing the rule tells the translator to forget the socket
// before it is closed, so no flow writes to a closed or reused descriptor.
//
// Limits: one read per wake-up handles at most 64 connections or datagrams
// so one busy forward cannot starve the loop; host addresses are IPv4
// literals, and the default is 127.0.0.1 (QEMU's default of all addresses
// would expose guests to the network without being asked).
#include "nat/portfwd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.hpp"
#include "core/fd.hpp"
#include "core/accept_pause.hpp"
#include "core/log.hpp"
#include "core/sockaddr.hpp"
#include "nat/tcp.hpp"
#include "nat/udp.hpp"

namespace vnet::nat {

using wire::IpAddr;
using wire::Ipv6Addr;
using wire::Ipv4Addr;

namespace {

constexpr int kBatch = 64;
constexpr std::size_t kMaxNameLen = 64;
constexpr std::size_t kMaxDatagram = 65536;
constexpr Ipv4Addr kLoopback{{127, 0, 0, 1}};

[[noreturn]] void bad_rule(std::string_view text, const std::string& why) {
  throw UserError("bad forward rule '" + std::string(text) + "': " + why +
                  " (expected [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport or "
                  "NAME:tcp|udp:[hostip]:hostport:[guestip]:guestport; IPv6 addresses in brackets, e.g. [::1])");
}

// Splits at sep, except inside brackets (an IPv6 address's colons).
std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  int depth = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '[') depth++;
    else if (s[i] == ']' && depth > 0) depth--;
    else if (s[i] == sep && depth == 0) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(s.substr(start));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

ForwardProto parse_proto(std::string_view text, std::string_view p, bool empty_ok) {
  if (p == "tcp" || (empty_ok && p.empty())) return ForwardProto::Tcp;
  if (p == "udp") return ForwardProto::Udp;
  bad_rule(text, "unknown protocol '" + std::string(p) + "' (tcp or udp)");
}

std::uint16_t parse_port(std::string_view text, std::string_view p, const char* which) {
  if (p.empty()) bad_rule(text, std::string("missing ") + which + " port");
  if (p.size() > 5 || !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }))
    bad_rule(text, std::string("bad ") + which + " port '" + std::string(p) + "'");
  const unsigned long v = std::stoul(std::string(p));
  if (v < 1 || v > 65535)
    bad_rule(text, std::string(which) + " port " + std::to_string(v) + " is out of range 1-65535");
  return static_cast<std::uint16_t>(v);
}

// "", "[]", an address, or one in brackets; nullopt for empty.
std::optional<IpAddr> parse_addr(std::string_view text, std::string_view a, const char* which) {
  if (!a.empty() && a.front() == '[') {
    if (a.size() < 2 || a.back() != ']') bad_rule(text, std::string("unbalanced brackets in ") + which + " address");
    a = a.substr(1, a.size() - 2);
  }
  if (a.empty()) return std::nullopt;
  auto addr = IpAddr::parse(a);
  if (!addr) bad_rule(text, std::string("bad ") + which + " address '" + std::string(a) + "' (an IPv4 or IPv6 address)");
  return addr;
}

// ADDR, or [ADDR] for IPv6, as rules and messages spell it.
std::string address_text(const IpAddr& a) { return a.is_v4() ? a.to_string() : "[" + a.to_string() + "]"; }

bool valid_name(std::string_view n) {
  return !n.empty() && n.size() <= kMaxNameLen && std::all_of(n.begin(), n.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || c == '.';
         });
}

// tcp-2222 for 127.0.0.1, tcp6-2222 for ::1, else the address with its
// colons as '_' (names are [A-Za-z0-9._-]).
std::string default_name(const ForwardRule& r) {
  std::string n = to_string(r.proto);
  if (r.host_addr == IpAddr(Ipv6Addr::loopback())) {
    n += "6";
  } else if (r.host_addr != IpAddr(kLoopback)) {
    std::string a = r.host_addr.to_string();
    std::replace(a.begin(), a.end(), ':', '_');
    n += "-" + a;
  }
  return n + "-" + std::to_string(r.host_port);
}

ForwardRule parse_virtualbox(std::string_view text, const std::vector<std::string_view>& f) {
  ForwardRule r;
  if (!valid_name(f[0])) bad_rule(text, "bad rule name '" + std::string(f[0]) + "' (letters, digits, - _ .; up to 64)");
  r.name = std::string(f[0]);
  r.proto = parse_proto(text, f[1], false);
  if (auto a = parse_addr(text, f[2], "host")) r.host_addr = *a;
  r.host_port = parse_port(text, f[3], "host");
  r.guest_addr = parse_addr(text, f[4], "guest");
  r.guest_port = parse_port(text, f[5], "guest");
  return r;
}

ForwardRule parse_hostfwd(std::string_view text, const std::vector<std::string_view>& f) {
  ForwardRule r;
  r.proto = parse_proto(text, f[0], true);
  if (auto a = parse_addr(text, f[1], "host")) r.host_addr = *a;
  const std::size_t dash = f[2].find('-');
  if (dash == std::string_view::npos) bad_rule(text, "missing '-' between the host and guest parts");
  r.host_port = parse_port(text, f[2].substr(0, dash), "host");
  r.guest_addr = parse_addr(text, f[2].substr(dash + 1), "guest");
  r.guest_port = parse_port(text, f[3], "guest");
  r.name = default_name(r);
  return r;
}

std::string endpoint(const IpAddr& a, std::uint16_t port) { return address_text(a) + ":" + std::to_string(port); }

UniqueFd open_host_socket(const ForwardRule& r) {
  const bool tcp = r.proto == ForwardProto::Tcp;
  const int family = r.host_addr.is_v4() ? AF_INET : AF_INET6;
  UniqueFd fd(::socket(family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw UserError(errno_text("cannot create a socket for forward " + r.name));
  if (family == AF_INET6) {
    // [::] means IPv6 only: the IPv4 side is a rule of its own.
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (tcp) {
    // Lets a forward come back at once after a restart (TIME_WAIT
    // leftovers); Linux still refuses a second listener on the port.
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  const SockAddr addr = SockAddr::from_ip(r.host_addr, r.host_port);
  const std::string where = endpoint(r.host_addr, r.host_port);
  if (::bind(fd.get(), addr.get(), addr.length) != 0) {
    if (errno == EADDRINUSE) throw UserError(where + " is already in use");
    if (errno == EADDRNOTAVAIL) throw UserError(where + ": " + r.host_addr.to_string() + " is not an address of this host");
    if (errno == EACCES) throw UserError(errno_text("cannot bind " + where + " (ports below 1024 need privileges)"));
    throw UserError(errno_text("cannot bind " + where));
  }
  if (tcp && ::listen(fd.get(), SOMAXCONN) != 0) {
    if (errno == EADDRINUSE) throw UserError(where + " is already in use");
    throw UserError(errno_text("cannot listen on " + where));
  }
  return fd;
}

}  // namespace

const char* to_string(ForwardProto p) { return p == ForwardProto::Tcp ? "tcp" : "udp"; }

std::string ForwardRule::to_string() const {
  return std::string(nat::to_string(proto)) + ":" + address_text(host_addr) + ":" + std::to_string(host_port) + "-" +
         (guest_addr ? address_text(*guest_addr) : "") + ":" + std::to_string(guest_port);
}

ForwardRule parse_forward_rule(std::string_view text) {
  const std::string_view t = trim(text);
  if (t.empty()) bad_rule(text, "empty rule");
  if (t.find(',') != std::string_view::npos) {
    auto f = split(t, ',');
    if (f.size() != 6) bad_rule(text, "a comma-separated rule has 6 fields");
    return parse_virtualbox(text, f);
  }
  int depth = 0;
  for (char c : t) {
    if (c == '[' && ++depth > 1) break;
    if (c == ']' && --depth < 0) break;
  }
  if (depth != 0) bad_rule(text, "unbalanced brackets");
  auto f = split(t, ':');
  if (f.size() == 6) return parse_virtualbox(text, f);
  if (f.size() == 4) return parse_hostfwd(text, f);
  // The protocol may be left out entirely: "[hostaddr]:hostport-[guestaddr]:guestport".
  if (f.size() == 3) {
    f.insert(f.begin(), std::string_view{});
    return parse_hostfwd(text, f);
  }
  bad_rule(text, "wrong number of ':' separated fields");
}

namespace {

void check_guest_address(const NatConfig& cfg, const IpAddr& guest) {
  if (guest.is_v4()) {
    const Ipv4Addr g = guest.v4();
    if (!cfg.net.contains(g) || g == cfg.gateway || g == cfg.dns || g == cfg.net.network() || g == cfg.net.broadcast())
      throw UserError("guest address " + g.to_string() + " is not a guest address of " + cfg.net.to_string());
    return;
  }
  if (!cfg.ipv6) throw UserError("guest address " + address_text(guest) + ": IPv6 is off on this network (--ipv6 on)");
  const Ipv6Addr& g = guest.v6();
  if (!cfg.net6.contains(g) || g == cfg.gateway6 || g == cfg.dns6 || g == cfg.net6.network())
    throw UserError("guest address " + address_text(guest) + " is not a guest address of " + cfg.net6.to_string());
}

}  // namespace

struct PortForwarder::State {
  struct Entry {
    ForwardRule rule;
    IpAddr guest;
    UniqueFd fd;
    std::uint64_t count = 0;  // connections accepted or datagrams received
    std::unique_ptr<AcceptPause> pause;  // TCP: backs off at fd exhaustion instead of spinning
  };

  GuestIo& io;
  TcpTranslator& tcp;
  UdpTranslator& udp;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> rules;
  std::vector<std::uint8_t> datagram = std::vector<std::uint8_t>(kMaxDatagram);
  log::RateLimited accept_log;

  State(GuestIo& g, TcpTranslator& t, UdpTranslator& u) : io(g), tcp(t), udp(u) {}

  ~State() {
    for (auto& [name, e] : rules) close(*e);
  }

  void close(Entry& e) {
    e.pause.reset();  // its resume timer must not touch the fd number once closed
    io.loop().remove(e.fd.get());
    if (e.rule.proto == ForwardProto::Udp) udp.forget_host_fd(e.fd.get());
    e.fd.reset();
  }

  void on_accept(Entry& e) {
    for (int i = 0; i < kBatch; ++i) {
      SockAddr client;
      client.length = sizeof client.storage;
      const int c = ::accept4(e.fd.get(), client.get(), &client.length, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) {
        const int err = errno;
        if (err == EINTR || err == ECONNABORTED) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        if (!e.pause) e.pause = std::make_unique<AcceptPause>(io.loop(), e.fd.get(), "forward " + e.rule.name);
        if (!e.pause->pause_if_exhausted(err)) accept_log.warn("forward {}: accept: {}", e.rule.name, std::strerror(err));
        return;
      }
      e.count++;
      log::debug("forward {}: connection from {}", e.rule.name, client.to_string());
      tcp.open_inbound(UniqueFd(c), client, e.guest, e.rule.guest_port);
    }
  }

  void on_datagram(Entry& e) {
    for (int i = 0; i < kBatch; ++i) {
      SockAddr client;
      client.length = sizeof client.storage;
      const ssize_t n = ::recvfrom(e.fd.get(), datagram.data(), datagram.size(), 0, client.get(), &client.length);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;  // EAGAIN, or an ICMP error from an earlier reply: nothing to hand on
      }
      e.count++;
      udp.inbound(e.fd.get(), client, e.guest, e.rule.guest_port,
                  wire::Bytes(datagram.data(), static_cast<std::size_t>(n)));
    }
  }
};

PortForwarder::PortForwarder(GuestIo& io, TcpTranslator& tcp, UdpTranslator& udp)
    : state_(std::make_unique<State>(io, tcp, udp)) {}

PortForwarder::~PortForwarder() = default;

std::string PortForwarder::add(std::string_view rule_text) { return add(parse_forward_rule(rule_text)); }

std::string PortForwarder::add(ForwardRule rule) {
  State& s = *state_;
  const NatConfig& cfg = s.io.config();
  if (!valid_name(rule.name)) throw UserError("bad forward rule name '" + rule.name + "'");
  if (s.rules.contains(rule.name)) throw UserError("a forward named " + rule.name + " already exists");
  for (const auto& [name, e] : s.rules)
    if (e->rule.proto == rule.proto && e->rule.host_addr == rule.host_addr && e->rule.host_port == rule.host_port)
      throw UserError(std::string(to_string(rule.proto)) + " " + endpoint(rule.host_addr, rule.host_port) +
                      " is already forwarded by " + name);
  const IpAddr guest = rule.guest_addr.value_or(IpAddr(cfg.dhcp_start));
  check_guest_address(cfg, guest);

  auto e = std::make_unique<State::Entry>();
  e->rule = std::move(rule);
  e->guest = guest;
  e->fd = open_host_socket(e->rule);
  State::Entry* ep = e.get();
  if (ep->rule.proto == ForwardProto::Tcp)
    s.io.loop().add(ep->fd.get(), EPOLLIN, [&s, ep](std::uint32_t) { s.on_accept(*ep); });
  else
    s.io.loop().add(ep->fd.get(), EPOLLIN, [&s, ep](std::uint32_t) { s.on_datagram(*ep); });
  const std::string name = ep->rule.name;
  s.rules.emplace(name, std::move(e));
  log::info("forward {}: {} {} -> {}", name, to_string(ep->rule.proto), endpoint(ep->rule.host_addr, ep->rule.host_port),
            endpoint(guest, ep->rule.guest_port));
  return name;
}

void PortForwarder::remove(std::string_view name) {
  State& s = *state_;
  auto it = s.rules.find(name);
  if (it == s.rules.end()) throw UserError("no forward named " + std::string(name));
  s.close(*it->second);
  s.rules.erase(it);
}

nlohmann::json PortForwarder::list() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [name, e] : state_->rules) {
    const bool tcp = e->rule.proto == ForwardProto::Tcp;
    out.push_back({{"name", name},
                   {"proto", to_string(e->rule.proto)},
                   {"host", endpoint(e->rule.host_addr, e->rule.host_port)},
                   {"guest", endpoint(e->guest, e->rule.guest_port)},
                   {"rule", e->rule.to_string()},
                   {tcp ? "connections" : "datagrams", e->count}});
  }
  return out;
}

std::size_t PortForwarder::size() const { return state_->rules.size(); }

}  // namespace vnet::nat
