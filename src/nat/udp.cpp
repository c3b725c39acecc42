// UDP translation.
//
// Theory of operation: a flow is (guest ip, guest port, dst ip, dst port) as
// the guest addressed it. Outgoing flows own one non-blocking host UDP
// socket connect()ed to the target the gateway chose (dst itself, or the
// host's loopback for the gateway address); whatever arrives on it goes back
// to the guest from dst:dport, so the guest sees a normal peer. Inbound
// flows (port forwards) borrow the forward's host socket: datagrams from a
// host client reach the guest from the client's address, and the guest's
// replies leave through that socket to the client.
//
// A connected socket reports ICMP port unreachable as ECONNREFUSED; the guest
// gets the equivalent ICMP (or ICMPv6) error, quoting a reconstructed header
// of its datagram (we keep no copy of the original). A target the host has
// no route to is reported as "no route" at once.
//
// A guest's burst toward one outgoing flow leaves as one send: datagrams of
// the flow read in the same event-loop round are gathered (same size, only
// the last may be shorter) and handed to the kernel with UDP_SEGMENT, which
// carries them through the host's stack as one packet and cuts them apart
// where they are delivered (or at a device that cannot take them whole). A
// datagram for another flow, or one that does not fit the run, sends the
// run first, so each flow's order is kept. Where the kernel refuses
// segmentation (EIO: a device without checksum offload; EMSGSIZE or EINVAL:
// a datagram over the path's MTU, for that flow) the datagrams go out one
// by one.
//
// Limits: the FlowTable (flow.cpp) admits each new flow against the guest's
// and the network's caps, shared with TCP and ICMP (drop_flow_limit and
// its cause); freed flows are reported to it so the heap can be trimmed.
// Timeouts: a flow idle for 60 s is closed (10 s for DNS, port 53, whose
// exchanges are one-shot); a sweep runs every 2 s while flows exist.
#include "nat/addresses.hpp"
#include "nat/flow.hpp"
#include "nat/udp.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>

#include "core/datagram_batch.hpp"
#include "core/log.hpp"
#include "wire/icmp.hpp"
#include "wire/icmpv6.hpp"
#include "wire/ipv4.hpp"
#include "wire/ipv6.hpp"
#include "wire/udp.hpp"

namespace vnet::nat {

using namespace vnet::wire;

namespace {

constexpr Nanos kIdleTimeout = 60 * kSeconds;
constexpr Nanos kDnsIdleTimeout = 10 * kSeconds;
constexpr Nanos kSweepInterval = 2 * kSeconds;
constexpr std::uint16_t kDnsPort = 53;
// Datagrams drained per readiness event, so one busy flow cannot starve others.
constexpr int kMaxReadsPerEvent = 2 * DatagramBatch::kSize;
// A run sent with UDP_SEGMENT: at most 64 datagrams (older kernels' limit;
// newer ones take 128), and a total that fits one IPv6 or IPv4 packet.
constexpr int kMaxRunDatagrams = 64;
constexpr std::size_t kMaxRunBytes = 65535 - 40 - UdpPacket::kHeaderLen;

struct Flow {
  FlowKey key;
  GuestId guest;         // whom it counts against (FlowTable)
  UniqueFd sock;         // outgoing flows
  int host_fd = -1;      // inbound flows: the port forward's socket (not owned)
  SockAddr client;       // inbound flows: where replies go
  Nanos last_active = 0;
  std::uint64_t in = 0, out = 0;  // datagrams to / from the guest
  bool one_by_one = false;        // the kernel refused a run of this flow's datagrams (over the path MTU)
  bool inbound() const { return host_fd >= 0; }
  Nanos idle_limit() const { return key.remote_port == kDnsPort ? kDnsIdleTimeout : kIdleTimeout; }
};

std::string endpoint(const IpAddr& a, std::uint16_t port) { return a.to_string() + ":" + std::to_string(port); }

// Consecutive datagrams of one outgoing flow waiting for the end of the
// loop round: a copy of each (the guest's frame buffer is reused by the
// next read), all of one size but the last.
class DatagramRun {
 public:
  DatagramRun() : data_(std::make_unique<std::uint8_t[]>(kMaxRunBytes)) {}
  bool empty() const { return count_ == 0; }
  Flow* flow() const { return flow_; }
  int count() const { return count_; }
  std::size_t segment_size() const { return segment_; }
  Bytes bytes() const { return {data_.get(), used_}; }
  Bytes datagram(int i) const {
    const std::size_t at = static_cast<std::size_t>(i) * segment_;
    return {data_.get() + at, std::min(segment_, used_ - at)};
  }
  // Whether payload may join the run: same flow, not larger than the
  // first, none shorter before it, room left.
  bool takes(const Flow& f, std::size_t size) const {
    return count_ > 0 && flow_ == &f && count_ < kMaxRunDatagrams && size > 0 && size <= segment_ &&
           used_ == static_cast<std::size_t>(count_) * segment_ && used_ + size <= kMaxRunBytes;
  }
  void start(Flow& f, Bytes payload) {
    flow_ = &f;
    segment_ = payload.size();
    count_ = 0;
    used_ = 0;
    add(payload);
  }
  void add(Bytes payload) {
    std::memcpy(data_.get() + used_, payload.data(), payload.size());
    used_ += payload.size();
    ++count_;
  }
  void clear() {
    count_ = 0;
    used_ = 0;
    flow_ = nullptr;
  }

 private:
  std::unique_ptr<std::uint8_t[]> data_;
  Flow* flow_ = nullptr;
  std::size_t segment_ = 0, used_ = 0;
  int count_ = 0;
};

}  // namespace

struct UdpTranslator::State {
  explicit State(GuestIo& g)
      : io(g), table(g.flows()), sweep(g.loop(), table, flows, kSweepInterval, [this](const FlowKey& k) { erase(k); }) {}
  ~State() {
    for (auto& [k, f] : flows)
      if (f->sock) io.loop().remove(f->sock.get());
  }

  GuestIo& io;
  FlowTable& table;
  FlowMap<Flow> flows;
  IdleSweep<Flow> sweep;
  // Shared by all flows; made on first use, because the gateway sizes its
  // frame buffer (and so l4_buffer) after constructing its translators.
  std::optional<DatagramBatch> batch;
  // Outgoing datagrams gathered in this loop round (see the top).
  DatagramRun run;
  bool run_flush_posted = false;
  bool segmentation_refused = false;  // EIO: the host cannot send runs at all
  LifeToken alive;

  DatagramBatch& receive_batch() {
    if (!batch) batch.emplace(io.l4_buffer().size() - UdpPacket::kHeaderLen);
    return *batch;
  }

  Flow* insert(std::unique_ptr<Flow> f) {
    Flow* raw = f.get();
    table.add(raw->guest, FlowKind::Udp);
    flows.emplace(raw->key, std::move(f));
    io.counters().udp_flows++;
    sweep.flow_added();
    return raw;
  }

  void erase(const FlowKey& key) {
    auto it = flows.find(key);
    if (it == flows.end()) return;
    if (run.flow() == it->second.get()) run.clear();
    if (it->second->sock) io.loop().remove(it->second->sock.get());
    table.remove(it->second->guest, FlowKind::Udp);
    flows.erase(it);
  }

  Flow* open_outgoing(const FlowKey& key, const SockAddr& target) {
    const GuestId guest = table.guest_of(key.guest);
    if (!table.admit(guest, FlowKind::Udp)) return nullptr;
    UniqueFd s(::socket(target.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!s || ::connect(s.get(), target.get(), target.length) != 0) {
      const int err = errno;
      log::debug("udp: cannot open a socket to {}: {}", target.to_string(), std::strerror(err));
      io.counters().drop_unsupported++;
      // No route on the host (no IPv6 default route, typically): the guest
      // learns at once, as from a router, instead of waiting for replies.
      if (err == ENETUNREACH || err == EHOSTUNREACH) send_unreachable(key, kUnreachableNoRoute);
      return nullptr;
    }
    auto f = std::make_unique<Flow>();
    f->key = key;
    f->guest = guest;
    f->sock = std::move(s);
    Flow* raw = insert(std::move(f));
    io.loop().add(raw->sock.get(), EPOLLIN, [this, raw](std::uint32_t) { on_readable(*raw); });
    return raw;
  }

  // Sends payload (already in l4_buffer at offset 8) to the guest.
  void deliver(Flow& f, std::size_t payload_len) {
    MutBytes l4 = io.l4_buffer();
    UdpRepr udp{f.key.remote_port, f.key.guest_port, static_cast<std::uint16_t>(payload_len)};
    if (!udp.emit(l4.first(UdpPacket::kHeaderLen + payload_len), f.key.remote, f.key.guest)) return;
    if (io.send_l4_in_place(f.key.remote, f.key.guest, IpProtocol::Udp, UdpPacket::kHeaderLen + payload_len)) {
      f.in++;
      io.counters().udp_in++;
    }
    f.last_active = monotonic_now();
  }

  // Datagrams from a flow's host socket, a batch per system call; each is
  // copied into the frame being built (a copy of at most an MTU is cheaper
  // than the recv per datagram it saves).
  void on_readable(Flow& f) {
    for (int got = 0; got < kMaxReadsPerEvent;) {
      const int n = receive_batch().receive(f.sock.get());
      if (n == 0) {
        if (errno == ECONNREFUSED) send_unreachable(f.key, kUnreachablePort);
        return;  // EAGAIN, or an error already reported
      }
      for (int i = 0; i < n; ++i) deliver_received(f, i);
      got += n;
      if (n < DatagramBatch::kSize) return;  // drained: no EAGAIN call to find out
    }
  }

  void deliver_received(Flow& f, int i) {
    MutBytes l4 = io.l4_buffer();
    // The buffer fits an IPv4 packet of the MTU; IPv6 headers are 20 bytes longer.
    const std::size_t room = l4.size() - UdpPacket::kHeaderLen - (f.key.guest.is_v4() ? 0 : 20);
    const Bytes datagram = batch->datagram(i);
    // Larger datagrams than the guest's MTU would need IP fragmentation,
    // which the gateway does not do.
    if (batch->truncated(i) || datagram.size() > room) {
      io.counters().drop_unsupported++;
      return;
    }
    std::memcpy(l4.data() + UdpPacket::kHeaderLen, datagram.data(), datagram.size());
    deliver(f, datagram.size());
  }

  enum Unreachable { kUnreachablePort, kUnreachableNoRoute };

  // ICMP destination unreachable from the remote, quoting a rebuilt IP+UDP
  // header of the guest's datagram (RFC 792 and 4443 need no more).
  void send_unreachable(const FlowKey& key, Unreachable why) {
    std::uint8_t quote[Ipv6Packet::kHeaderLen + UdpPacket::kHeaderLen] = {};
    std::size_t ip_len;
    if (key.guest.is_v4()) {
      Ipv4Repr ip;
      ip.src = key.guest.v4();
      ip.dst = key.remote.v4();
      ip.protocol = IpProtocol::Udp;
      ip.payload_len = UdpPacket::kHeaderLen;
      ip_len = ip.emit(quote);
    } else {
      Ipv6Repr ip;
      ip.src = key.guest.v6();
      ip.dst = key.remote.v6();
      ip.next_header = IpProtocol::Udp;
      ip.payload_len = UdpPacket::kHeaderLen;
      ip_len = ip.emit(quote);
    }
    MutBytes udp(quote + ip_len, UdpPacket::kHeaderLen);
    store_be16(udp, 0, key.guest_port);
    store_be16(udp, 2, key.remote_port);
    store_be16(udp, 4, UdpPacket::kHeaderLen);
    const Bytes original(quote, ip_len + UdpPacket::kHeaderLen);
    std::size_t len;
    if (key.guest.is_v4()) {
      const std::uint8_t code = why == kUnreachablePort ? Icmpv4Unreachable::Port : Icmpv4Unreachable::Net;
      len = Icmpv4Repr::dest_unreachable(code, original).emit(io.l4_buffer());
    } else {
      const std::uint8_t code = why == kUnreachablePort ? Icmpv6UnreachableCode::Port : Icmpv6UnreachableCode::NoRoute;
      len = Icmpv6Repr::dest_unreachable(code, original).emit(io.l4_buffer(), key.remote.v6(), key.guest.v6());
    }
    if (len) io.send_l4_in_place(key.remote, key.guest, key.guest.is_v4() ? IpProtocol::Icmp : IpProtocol::Icmpv6, len);
  }

  // A guest's datagram toward f: gathered into the round's run where it
  // can be, else sent now (after the run, which may hold earlier ones).
  void send_out(Flow& f, Bytes payload) {
    f.last_active = monotonic_now();
    if (run.takes(f, payload.size())) {
      run.add(payload);
      return;
    }
    flush_run();
    if (f.inbound() || f.one_by_one || segmentation_refused || payload.empty() || payload.size() > kMaxRunBytes) {
      send_one(f, payload);
      return;
    }
    run.start(f, payload);
    if (run_flush_posted) return;
    run_flush_posted = true;
    io.loop().post(alive, [this] {
      run_flush_posted = false;
      flush_run();
    });
  }

  void send_one(Flow& f, Bytes payload) {
    ssize_t n;
    if (f.inbound()) {
      n = ::sendto(f.host_fd, payload.data(), payload.size(), MSG_DONTWAIT, f.client.get(), f.client.length);
    } else {
      n = ::send(f.sock.get(), payload.data(), payload.size(), MSG_DONTWAIT);
    }
    sent(f, n >= 0 ? 1 : 0);
  }

  // Counts what went out; a refused send reports the port unreachable.
  void sent(Flow& f, int datagrams) {
    f.out += static_cast<std::uint64_t>(datagrams);
    io.counters().udp_out += static_cast<std::uint64_t>(datagrams);
    if (datagrams == 0 && errno == ECONNREFUSED && !f.inbound()) send_unreachable(f.key, kUnreachablePort);
    // EAGAIN/ENOBUFS: UDP may lose datagrams; the guest's protocol copes.
  }

  void flush_run() {
    if (run.empty()) return;
    Flow& f = *run.flow();
    if (run.count() == 1) {
      send_one(f, run.bytes());
    } else if (!send_segmented(f)) {
      // Refused whole: EIO for every flow (no checksum offload on the
      // way out), EMSGSIZE or EINVAL for this flow's size (over the path
      // MTU, where only a single datagram may be fragmented).
      if (errno == EIO) segmentation_refused = true;
      else f.one_by_one = true;
      for (int i = 0; i < run.count(); ++i) send_one(f, run.datagram(i));
    }
    run.clear();
  }

  // The run as one send with UDP_SEGMENT; false when the kernel refused
  // segmentation itself (errno EIO, EMSGSIZE or EINVAL), true otherwise
  // (sent, or lost as a datagram may be).
  bool send_segmented(Flow& f) {
    const Bytes all = run.bytes();
    iovec iov{const_cast<std::uint8_t*>(all.data()), all.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(std::uint16_t))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
    const auto segment = static_cast<std::uint16_t>(run.segment_size());
    std::memcpy(CMSG_DATA(c), &segment, sizeof segment);
    const ssize_t n = ::sendmsg(f.sock.get(), &msg, MSG_DONTWAIT);
    if (n < 0 && (errno == EIO || errno == EMSGSIZE || errno == EINVAL)) return false;
    if (n >= 0) io.counters().udp_out_runs++;
    sent(f, n >= 0 ? run.count() : 0);
    return true;
  }

};

UdpTranslator::UdpTranslator(GuestIo& io) : state_(std::make_unique<State>(io)) {}
UdpTranslator::~UdpTranslator() = default;

void UdpTranslator::on_datagram(const IpAddr& src, std::uint16_t sport, const IpAddr& dst, std::uint16_t dport,
                                const SockAddr& target, Bytes payload) {
  State& s = *state_;
  const FlowKey key{src, sport, dst, dport};
  Flow* f = nullptr;
  if (auto it = s.flows.find(key); it != s.flows.end()) {
    f = it->second.get();
  } else {
    f = s.open_outgoing(key, target);
    if (!f) return;
  }
  s.send_out(*f, payload);
}

bool UdpTranslator::has_flow(const IpAddr& src, std::uint16_t sport, const IpAddr& dst, std::uint16_t dport) const {
  return state_->flows.contains(FlowKey{src, sport, dst, dport});
}

void UdpTranslator::inbound(int host_fd, const SockAddr& client, const IpAddr& guest, std::uint16_t guest_port,
                            Bytes payload) {
  State& s = *state_;
  const FlowKey key{guest, guest_port, guest_visible_address(client, guest, s.io.config()), client.port()};
  Flow* f = nullptr;
  if (auto it = s.flows.find(key); it != s.flows.end()) {
    f = it->second.get();
  } else {
    const GuestId owner = s.table.guest_of(guest);
    if (!s.table.admit(owner, FlowKind::Udp)) return;
    auto nf = std::make_unique<Flow>();
    nf->key = key;
    nf->guest = owner;
    nf->host_fd = host_fd;
    nf->client = client;
    f = s.insert(std::move(nf));
  }
  MutBytes l4 = s.io.l4_buffer();
  if (payload.size() + UdpPacket::kHeaderLen > l4.size()) {
    s.io.counters().drop_unsupported++;
    return;
  }
  std::memcpy(l4.data() + UdpPacket::kHeaderLen, payload.data(), payload.size());
  s.deliver(*f, payload.size());
}

void UdpTranslator::forget_host_fd(int host_fd) {
  State& s = *state_;
  for (auto it = s.flows.begin(); it != s.flows.end();) {
    auto next = std::next(it);
    if (it->second->host_fd == host_fd) s.erase(it->first);
    it = next;
  }
}

void UdpTranslator::expire_idle(Nanos now) { state_->sweep.expire(now); }

nlohmann::json UdpTranslator::status() const {
  nlohmann::json out = nlohmann::json::array();
  const Nanos now = monotonic_now();
  for (const auto& [key, f] : state_->flows) {
    out.push_back({{"guest", endpoint(key.guest, key.guest_port)},
                   {"remote", endpoint(key.remote, key.remote_port)},
                   {"direction", f->inbound() ? "in" : "out"},
                   {"idle_s", (now - f->last_active) / kSeconds},
                   {"in", f->in},
                   {"out", f->out}});
  }
  return out;
}

}  // namespace vnet::nat
