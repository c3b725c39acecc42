// DNS forwarder at the network's DNS address (10.0.2.3 by default).
//
// Theory of operation: a guest's UDP query (over IPv4 to the DNS address, or
// over IPv6 to the IPv6 DNS address) is checked (a well-formed query
// with one question, else a counted drop), given a fresh random 16-bit ID and
// sent from one shared, unconnected UDP socket per address family to an
// upstream resolver. A pending table maps the new ID back to the guest's
// address, port and ID. An answer is accepted only from an upstream, with a
// known ID and the same question; it goes back to the guest with its ID
// restored, from DNS:53.
//
// Upstreams: config().dns_upstream ("ADDR" or "ADDR:PORT", IPv4 or IPv6
// literals) if given, else the nameservers of config().resolv_conf (loopback
// stubs such as 127.0.0.53 work: we are a host process). That file is
// re-read when its identity or mtime changes, checked at most every 2 s, so a
// laptop that changes networks keeps resolving. Without nameserver lines we
// use 127.0.0.1, as the C library does.
//
// Timeouts: 2 s per upstream, then the next one (each tried once, at most 3);
// then the query is forgotten (the guest's resolver retries itself). Each
// expiry counts dns_timeouts.
//
// Truncation: an answer with TC set is fetched again over TCP from the same
// upstream (non-blocking connect, 2-byte length framing, 5 s limit). The
// guest gets the full answer if it fits what it can take over UDP (its EDNS
// size, else 512, and never more than the MTU minus the IPv4 and UDP headers:
// the gateway does not fragment); otherwise the header and question with TC, so it asks over TCP
// itself (which tcp_upstream() routes to the first upstream).
//
// Limits: 1024 queries pending, at most 256 of them from one guest (so one
// guest's queries to names that never resolve cannot delay the others'),
// and 32 TCP retries at once (drop_flow_limit; drop_guest_dns for the
// per-guest share).
#include "nat/dns.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "core/log.hpp"
#include "nat/flow.hpp"
#include "wire/dns.hpp"
#include "wire/ipv4.hpp"
#include "wire/ipv6.hpp"
#include "wire/udp.hpp"

namespace vnet::nat {

using namespace vnet::wire;

namespace {

constexpr std::uint16_t kDnsPort = 53;
constexpr Nanos kUpstreamTimeout = 2 * kSeconds;
constexpr Nanos kTcpTimeout = 5 * kSeconds;
constexpr Nanos kResolvCheckInterval = 2 * kSeconds;
constexpr std::size_t kMaxAttempts = 3;
constexpr std::size_t kMaxPending = 1024;
constexpr std::uint32_t kMaxPendingPerGuest = kMaxPending / 4;
constexpr std::size_t kMaxTcpJobs = 32;
constexpr std::size_t kMaxUpstreams = 8;
constexpr std::size_t kMaxResolvConf = 64 * 1024;
constexpr std::size_t kMaxMessage = 65535;

std::optional<SockAddr> make_addr(const std::string& host, std::uint16_t port) {
  SockAddr s;
  std::string h = host;
  std::string scope;
  if (auto pct = h.find('%'); pct != std::string::npos) {
    scope = h.substr(pct + 1);
    h.resize(pct);
  }
  auto* in = reinterpret_cast<sockaddr_in*>(&s.storage);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&s.storage);
  if (scope.empty() && inet_pton(AF_INET, h.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    s.length = sizeof(sockaddr_in);
    return s;
  }
  if (inet_pton(AF_INET6, h.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    if (!scope.empty()) in6->sin6_scope_id = if_nametoindex(scope.c_str());
    s.length = sizeof(sockaddr_in6);
    return s;
  }
  return std::nullopt;
}

// "ADDR", "ADDR:PORT", "[V6]:PORT" or a bare IPv6 literal.
std::optional<SockAddr> parse_upstream(const std::string& text) {
  std::string host = text;
  std::uint16_t port = kDnsPort;
  auto parse_port = [&](const std::string& p) {
    if (p.empty() || p.size() > 5 || !std::all_of(p.begin(), p.end(), ::isdigit)) return false;
    const unsigned long v = std::stoul(p);
    if (v == 0 || v > 65535) return false;
    port = static_cast<std::uint16_t>(v);
    return true;
  };
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    if (close + 1 < text.size() && (text[close + 1] != ':' || !parse_port(text.substr(close + 2)))) return std::nullopt;
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    const auto colon = text.find(':');
    host = text.substr(0, colon);
    if (!parse_port(text.substr(colon + 1))) return std::nullopt;
  }
  return make_addr(host, port);
}

bool same_endpoint(const SockAddr& a, const sockaddr_storage& b) {
  if (a.family() != b.ss_family) return false;
  if (a.family() == AF_INET) {
    const auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage);
    const auto* y = reinterpret_cast<const sockaddr_in*>(&b);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a.family() == AF_INET6) {
    const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage);
    const auto* y = reinterpret_cast<const sockaddr_in6*>(&b);
    return x->sin6_port == y->sin6_port && std::memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
  }
  return false;
}

struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  timespec mtime{};
  bool operator==(const FileId& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec;
  }
};

FileId file_id(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {st.st_dev, st.st_ino, st.st_size, st.st_mtim};
}

std::vector<SockAddr> read_resolv_conf(const std::string& path) {
  std::vector<SockAddr> out;
  std::ifstream f(path);
  std::string line;
  std::size_t read = 0;
  while (out.size() < kMaxUpstreams && read < kMaxResolvConf && std::getline(f, line)) {
    read += line.size() + 1;
    std::istringstream words(line);
    std::string key, addr;
    if (!(words >> key >> addr) || key != "nameserver") continue;
    if (auto a = make_addr(addr, kDnsPort)) out.push_back(*a);
  }
  return out;
}

std::uint16_t random_id() {
  std::uint16_t id = 0;
  if (getrandom(&id, sizeof id, GRND_NONBLOCK) != sizeof id) id = static_cast<std::uint16_t>(monotonic_now() >> 3);
  return id;
}

// Who asked, and what they can take back.
struct Asker {
  IpAddr guest;
  std::uint16_t port = 0;
  std::uint16_t id = 0;         // the guest's own ID
  std::uint16_t max_size = 0;   // largest UDP answer the guest accepts
};

struct Pending {
  Asker asker;
  GuestId guest;  // whose share of kMaxPending this query uses
  DnsQuestion question;
  std::vector<std::uint8_t> query;  // with our ID in place of the guest's
  std::size_t first_upstream = 0;
  std::size_t attempts = 0;
  SockAddr sent_to;
  Nanos deadline = 0;
};

struct TcpJob {
  Asker asker;
  std::uint16_t id = 0;  // ours
  UniqueFd sock;
  std::vector<std::uint8_t> out;  // length-prefixed query
  std::size_t sent = 0;
  std::vector<std::uint8_t> in;
  Nanos deadline = 0;
};

}  // namespace

struct DnsForwarder::State {
  explicit State(GuestIo& g) : io(g), timer(g.loop(), [this] { on_timer(); }), rx(kMaxMessage) {
    if (!io.config().dns_upstream.empty()) {
      configured = true;
      for (const auto& text : io.config().dns_upstream) {
        if (auto a = parse_upstream(text)) {
          upstreams.push_back(*a);
        } else {
          log::warn("dns: ignoring upstream '{}': not ADDR or ADDR:PORT", text);
        }
      }
    } else {
      reload_resolv_conf();
    }
  }
  ~State() {
    for (auto& s : sockets)
      if (s) io.loop().remove(s.get());
    for (auto& [fd, job] : tcp_jobs) io.loop().remove(fd);
  }

  GuestIo& io;
  bool configured = false;
  std::vector<SockAddr> upstreams;
  FileId resolv_id;
  Nanos next_resolv_check = 0;
  UniqueFd sockets[2];  // AF_INET, AF_INET6
  std::unordered_map<std::uint16_t, Pending> pending;
  std::unordered_map<GuestId, std::uint32_t, GuestIdHash> pending_per_guest;
  std::unordered_map<int, std::unique_ptr<TcpJob>> tcp_jobs;
  Timer timer;
  std::vector<std::uint8_t> rx;

  // --- upstream list ---

  void reload_resolv_conf() {
    const auto& path = io.config().resolv_conf;
    resolv_id = file_id(path);
    upstreams = read_resolv_conf(path);
    if (upstreams.empty()) upstreams.push_back(*make_addr("127.0.0.1", kDnsPort));
    std::string list;
    for (const auto& u : upstreams) list += " " + u.to_string();
    log::info("dns: upstreams from {}:{}", path, list);
  }

  void refresh_upstreams() {
    if (configured) return;
    const Nanos now = monotonic_now();
    if (now < next_resolv_check) return;
    next_resolv_check = now + kResolvCheckInterval;
    if (!(file_id(io.config().resolv_conf) == resolv_id)) reload_resolv_conf();
  }

  bool from_upstream(const sockaddr_storage& from, const Pending& p) const {
    if (same_endpoint(p.sent_to, from)) return true;
    return std::any_of(upstreams.begin(), upstreams.end(), [&](const SockAddr& u) { return same_endpoint(u, from); });
  }

  // --- UDP path ---

  int socket_for(int family) {
    UniqueFd& s = sockets[family == AF_INET ? 0 : 1];
    if (!s) {
      s.reset(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!s) return -1;
      const int fd = s.get();
      io.loop().add(fd, EPOLLIN, [this, fd](std::uint32_t) { on_udp_readable(fd); });
    }
    return s.get();
  }

  std::uint16_t fresh_id() const {
    std::uint16_t id = random_id();
    for (int i = 0; i < 64 && pending.count(id); ++i) id = random_id();
    return id;
  }

  bool send_to_upstream(Pending& p) {
    if (upstreams.empty()) return false;
    const SockAddr& up = upstreams[(p.first_upstream + p.attempts) % upstreams.size()];
    const int fd = socket_for(up.family());
    if (fd < 0) return false;
    p.sent_to = up;
    p.deadline = monotonic_now() + kUpstreamTimeout;
    // Failures (no route, ENOBUFS) are treated as a lost datagram: the timer
    // moves on to the next upstream.
    (void)::sendto(fd, p.query.data(), p.query.size(), MSG_DONTWAIT, up.get(), up.length);
    arm(p.deadline);
    return true;
  }

  void erase_pending(std::unordered_map<std::uint16_t, Pending>::iterator it) {
    auto share = pending_per_guest.find(it->second.guest);
    if (share != pending_per_guest.end() && --share->second == 0) pending_per_guest.erase(share);
    pending.erase(it);
  }

  void arm(Nanos deadline) {
    if (!timer.armed()) timer.arm_at(deadline);
  }

  void on_query(const IpAddr& guest, std::uint16_t guest_port, Bytes query) {
    auto msg = DnsMessage::parse_query(query);
    auto question = msg ? msg->question() : Parsed<DnsQuestion>(ParseError::Truncated);
    if (!msg || !question) {
      io.counters().drop_malformed++;
      return;
    }
    const GuestId asker_id = io.flows().guest_of(guest);
    if (pending.size() >= kMaxPending) {
      io.counters().drop_flow_limit++;
      return;
    }
    if (auto share = pending_per_guest.find(asker_id);
        share != pending_per_guest.end() && share->second >= kMaxPendingPerGuest) {
      io.counters().drop_flow_limit++;
      io.counters().drop_guest_dns++;
      return;
    }
    refresh_upstreams();
    io.counters().dns_queries++;
    // The whole IP datagram must fit the MTU: room for the DNS message is
    // the MTU less the IP and UDP headers (and never more than the buffer).
    const std::size_t mtu = std::max<std::size_t>(io.config().mtu, 576);
    const std::size_t ip_header = guest.is_v4() ? Ipv4Packet::kMinHeaderLen : Ipv6Packet::kHeaderLen;
    const std::size_t mtu_room = std::min(io.l4_buffer().size(), mtu - ip_header) - UdpPacket::kHeaderLen;
    const std::uint16_t id = fresh_id();
    Pending p;
    p.asker = {guest, guest_port, msg->id(),
               static_cast<std::uint16_t>(
                   std::min<std::size_t>(msg->edns_udp_size().value_or(DnsMessage::kClassicUdpSize), mtu_room))};
    p.question = *question;
    p.guest = asker_id;
    p.query.assign(query.begin(), query.end());
    dns_set_id(p.query, id);
    auto [it, inserted] = pending.emplace(id, std::move(p));
    if (!inserted) return;
    pending_per_guest[asker_id]++;
    if (!send_to_upstream(it->second)) erase_pending(it);
  }

  void on_udp_readable(int fd) {
    for (int i = 0; i < 64; ++i) {
      sockaddr_storage from{};
      socklen_t from_len = sizeof from;
      const ssize_t n = ::recvfrom(fd, rx.data(), rx.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n < 0) return;
      on_udp_answer(from, Bytes(rx.data(), static_cast<std::size_t>(n)));
    }
  }

  void on_udp_answer(const sockaddr_storage& from, Bytes answer) {
    auto msg = DnsMessage::parse(answer);
    if (!msg || !msg->is_response()) {
      io.counters().drop_malformed++;
      return;
    }
    auto it = pending.find(msg->id());
    if (it == pending.end() || !from_upstream(from, it->second)) return;  // late, duplicate or spoofed
    auto q = msg->question();
    if (!q || !q->same_as(it->second.question)) return;
    Pending p = std::move(it->second);
    erase_pending(it);
    if (msg->truncated()) {
      SockAddr up;
      std::memcpy(&up.storage, &from, sizeof from);
      up.length = from.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      start_tcp(p, msg->id(), up);
      return;
    }
    deliver(p.asker, answer);
  }

  // Sends an answer to the guest with its ID restored, cut to TC-only if it
  // is larger than the guest can take.
  void deliver(const Asker& a, Bytes answer) {
    auto msg = DnsMessage::parse(answer);
    if (!msg) {
      io.counters().drop_malformed++;
      return;
    }
    MutBytes l4 = io.l4_buffer();
    MutBytes payload = l4.subspan(UdpPacket::kHeaderLen);
    std::size_t len = 0;
    if (answer.size() <= a.max_size && answer.size() <= payload.size()) {
      std::memcpy(payload.data(), answer.data(), answer.size());
      len = answer.size();
    } else {
      len = dns_truncate(*msg, payload.first(std::min<std::size_t>(payload.size(), a.max_size)));
      if (!len) return;
    }
    dns_set_id(payload, a.id);
    // The answer comes from the address the guest asked, in its family.
    const IpAddr from = a.guest.is_v4() ? IpAddr(io.config().dns) : IpAddr(io.config().dns6);
    if (io.send_udp(from, kDnsPort, a.guest, a.port, payload.first(len))) io.counters().dns_answers++;
  }

  // --- TCP retry of truncated answers ---

  void start_tcp(const Pending& p, std::uint16_t id, const SockAddr& up) {
    if (tcp_jobs.size() >= kMaxTcpJobs) {
      io.counters().drop_flow_limit++;
      return;
    }
    UniqueFd s(::socket(up.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!s) return;
    if (::connect(s.get(), up.get(), up.length) != 0 && errno != EINPROGRESS) {
      log::debug("dns: TCP connect to {}: {}", up.to_string(), std::strerror(errno));
      return;
    }
    auto job = std::make_unique<TcpJob>();
    job->asker = p.asker;
    job->id = id;
    job->out.resize(2 + p.query.size());
    store_be16(job->out, 0, static_cast<std::uint16_t>(p.query.size()));
    std::memcpy(job->out.data() + 2, p.query.data(), p.query.size());
    job->deadline = monotonic_now() + kTcpTimeout;
    job->sock = std::move(s);
    const int fd = job->sock.get();
    tcp_jobs.emplace(fd, std::move(job));
    io.loop().add(fd, EPOLLOUT, [this, fd](std::uint32_t ev) { on_tcp_event(fd, ev); });
    arm(monotonic_now() + kTcpTimeout);
  }

  void finish_tcp(int fd) {
    io.loop().remove(fd);
    tcp_jobs.erase(fd);
  }

  void on_tcp_event(int fd, std::uint32_t events) {
    auto it = tcp_jobs.find(fd);
    if (it == tcp_jobs.end()) return;
    TcpJob& job = *it->second;
    if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) return finish_tcp(fd);
    if (job.sent < job.out.size()) {
      const ssize_t n = ::send(fd, job.out.data() + job.sent, job.out.size() - job.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) finish_tcp(fd);
        return;
      }
      job.sent += static_cast<std::size_t>(n);
      if (job.sent == job.out.size()) io.loop().modify(fd, EPOLLIN);
      return;
    }
    std::uint8_t buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return finish_tcp(fd);
      if (n < 0) return;
      job.in.insert(job.in.end(), buf, buf + n);
      if (job.in.size() < 2) continue;
      const std::size_t need = 2 + std::size_t{load_be16(job.in, 0)};
      if (job.in.size() > need) job.in.resize(need);  // ignore anything after the one answer
      if (job.in.size() < need) continue;
      const Bytes answer = Bytes(job.in).subspan(2);
      auto msg = DnsMessage::parse(answer);
      if (msg && msg->is_response() && msg->id() == job.id) {
        deliver(job.asker, answer);
      } else {
        io.counters().drop_malformed++;
      }
      return finish_tcp(fd);
    }
  }

  // --- timeouts ---

  void on_timer() {
    const Nanos now = monotonic_now();
    std::vector<std::uint16_t> dead;
    for (auto& [id, p] : pending) {
      if (p.deadline > now) continue;
      io.counters().dns_timeouts++;
      ++p.attempts;
      if (p.attempts >= std::min(kMaxAttempts, upstreams.size()) || !send_to_upstream(p)) dead.push_back(id);
    }
    for (auto id : dead) erase_pending(pending.find(id));
    std::vector<int> stale;
    for (auto& [fd, job] : tcp_jobs)
      if (job->deadline <= now) stale.push_back(fd);
    for (int fd : stale) {
      io.counters().dns_timeouts++;
      finish_tcp(fd);
    }
    Nanos next = 0;
    for (auto& [id, p] : pending) next = next ? std::min(next, p.deadline) : p.deadline;
    for (auto& [fd, job] : tcp_jobs) next = next ? std::min(next, job->deadline) : job->deadline;
    if (next) timer.arm_at(next);
  }
};

DnsForwarder::DnsForwarder(GuestIo& io) : state_(std::make_unique<State>(io)) {}
DnsForwarder::~DnsForwarder() = default;

void DnsForwarder::on_query(const IpAddr& guest, std::uint16_t guest_port, Bytes query) {
  state_->on_query(guest, guest_port, query);
}

std::optional<SockAddr> DnsForwarder::tcp_upstream() const {
  state_->refresh_upstreams();
  if (state_->upstreams.empty()) return std::nullopt;
  return state_->upstreams.front();
}

nlohmann::json DnsForwarder::status() const {
  nlohmann::json ups = nlohmann::json::array();
  for (const auto& u : state_->upstreams) ups.push_back(u.to_string());
  return {{"upstreams", ups},
          {"pending", state_->pending.size()},
          {"tcp_pending", state_->tcp_jobs.size()},
          {"source", state_->configured ? "configured" : "resolv.conf"}};
}

}  // namespace vnet::nat
