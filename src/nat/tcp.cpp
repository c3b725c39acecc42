// TCP translation.
//
// Theory of operation: no copy-and-buffer. Each guest connection is one host
// socket connection and the kernel's socket buffers are the only buffers.
//
// Outbound: the guest's SYN creates a non-blocking socket connect()ing to the
// target the gateway chose. The guest gets its SYN-ACK only once the host
// connect succeeded (so a refused or unreachable port is an RST, as if the
// guest talked to the server directly). Our SYN-ACK offers MSS = mtu - 40 and,
// if the guest offered window scaling, a scale of 7.
//
// Guest -> host: an in-order segment is written with send(MSG_DONTWAIT) and
// we ACK exactly what the socket accepted; the rest is not kept: the guest
// gets a (duplicate) ACK and retransmits. A segment past a hole (a frame lost
// on the guest's link) is kept (nat/tcp_reassembly), reported in SACK blocks
// when the guest offered SACK, and written once the hole is filled. The
// window we advertise is half the socket's free send buffer (SO_MEMINFO:
// (sndbuf - wmem_queued) / 2, truesize units; read now and then and spent
// down by our sends in between, see compute_window), so the guest rarely
// sends more than the kernel takes. When a
// send came up short we watch EPOLLOUT and send a window update once it
// drains. ACKs are coalesced: one per flow per event-loop batch (post()).
//
// Host -> guest: data stays in the socket's receive queue until the guest
// ACKs it. We MSG_PEEK at offset "sent but unacked" (SO_PEEK_OFF where the
// kernel supports it on TCP, else see the fallback below) straight into the
// outgoing frame, within the guest's (scaled) window and the room left in
// the guest's port queue (a frame that finds it full would be lost). Where
// the gateway offers offloads a segment is a super-segment of up to 64 KiB
// with its checksum left open, which the guest's kernel (TAP) or the switch
// cuts into MSS-sized frames; else it is one MSS. A guest
// ACK discards exactly that many bytes (recv MSG_TRUNC). The socket is
// watched edge-triggered, so unacked data left in the queue does not keep it
// readable; whenever the window opens we push again ourselves.
//
// So the socket's receive buffer holds all data in flight to the guest, and
// caps a download at buffer / the guest's round trip. The kernel sizes it
// (autotuning) from the host side's round trip, tens of microseconds, and
// over a slow guest link (50 ms) it stayed at 1.3-3.9 MB: 170-470 Mbit/s.
// So the translator widens it itself (widen_host_window) once a peek finds
// everything the socket holds already in flight while the guest's window
// would take more, and the guest acknowledged that much since the last
// step: double, by SO_RCVLOWAT, which grows an unlocked buffer without the
// privilege SO_RCVBUFFORCE needs and leaves autotuning on (the kernel caps
// it at half of tcp_rmem's maximum; the low-water mark goes back to 1 at
// once). A guest that stops acknowledging stops the growth.
//
// Loss: RTO starts at 200 ms, doubles up to 10 s, 12 retries then RST;
// an RTO resends everything from the last ACK (go-back-N, re-peeked);
// three duplicate ACKs resend the first unacked segment, and until the
// data then in flight is acknowledged each partial ACK resends the next
// (NewReno). A zero window stops
// sending and is probed (an ACK for seq-1, which makes the guest answer with
// its window) on the same backoff.
//
// Close: guest FIN -> shutdown(SHUT_WR) and ACK (only once all its data was
// accepted); host EOF, after all data was sent -> FIN to the guest. Both
// directions done -> the socket closes and the flow lingers 2 s (TIME_WAIT,
// re-ACKing a repeated FIN). Guest RST -> close with SO_LINGER 0 so the host
// peer sees a reset; host error (ECONNRESET...) -> RST to the guest.
//
// Inbound (port forwards): the accepted socket becomes a flow in SYN_SENT:
// we send the guest a SYN from the client's address (loopback clients appear
// as the gateway) and retry it (the guest's MAC may not be known yet) 6
// times with backoff from 500 ms; the guest's SYN-ACK establishes it.
//
// Limits: the FlowTable (flow.cpp) admits each new flow and pending connect
// against the guest's and the network's caps (refusals are counted there
// and answered with RST); connect timeout 20 s. Flows in TIME_WAIT (2 s, no
// socket) do not count against the caps, have a cap of their own, and give
// way to a new SYN on the same port pair. Each host socket's send buffer,
// the guest's upload window, is sized from the network's budget
// (FlowTable::size_send_buffer) and re-sized as flows come and go.
//
// Without SO_PEEK_OFF (or with VNET_TCP_NO_PEEK_OFF=1) the data in flight is
// re-read from the head of the queue: once per round, and only when enough
// new data waits (push_to_guest_fallback), so the cost stays linear.
#include "nat/addresses.hpp"
#include "nat/flow.hpp"
#include "nat/tcp.hpp"
#include "nat/tcp_reassembly.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <vector>

#include "core/log.hpp"
#include "core/shrink.hpp"
#include "wire/checksum.hpp"
#include "wire/tcp.hpp"

namespace vnet::nat {

using namespace vnet::wire;

namespace {

constexpr Nanos kInitialRto = 200 * kMillis;
constexpr Nanos kMaxRto = 10 * kSeconds;
constexpr int kMaxRetries = 12;
constexpr int kMaxProbes = 60;
// How long a guest with its window shut may leave our probes unanswered.
constexpr Nanos kSilentGuestLimit = 60 * kSeconds;
constexpr Nanos kConnectTimeout = 20 * kSeconds;
constexpr Nanos kInboundSynRetry = 500 * kMillis;
constexpr int kInboundSynTries = 6;
constexpr Nanos kTimeWait = 2 * kSeconds;
constexpr std::uint8_t kOurWindowScale = 7;
constexpr std::uint16_t kDefaultGuestMss = 536;
constexpr std::size_t kDataOffset = TcpPacket::kMinHeaderLen;  // data segments carry no options
// Fallback (no SO_PEEK_OFF): the most we peek per push, which bounds the
// data in flight per flow there.
constexpr std::size_t kScratchSize = 1 << 20;
constexpr std::size_t kFallbackMaxInFlight = 768 << 10;
// Data in flight toward a guest is bounded by its window and by the room
// left in its port's queue (a frame that does not fit is lost and costs an
// RTO): what a segment costs there (each MSS frame carries headers and a
// queue record), and room kept free for ACKs and other flows' frames.
constexpr std::size_t kFrameQueueOverhead = 96;
constexpr std::size_t kQueueReserve = 64 << 10;
// A flow with nothing in flight that found the queue full tries again this
// soon (no ACK of its own will come to wake it).
constexpr Nanos kQueueFullRetry = kMillis;
// Segments kept past a hole: per flow, and for all flows of a network (a
// guest that opens holes on purpose gets refused, not memory).
constexpr std::size_t kReassemblyPerFlow = 4 << 20;
constexpr std::size_t kReassemblyBudget = 32 << 20;
// Widening the host socket's receive buffer (see the top): from this much
// data in flight, up to this window.
constexpr std::size_t kWidenFloor = 64 << 10;
constexpr std::size_t kMaxHostWindow = 16 << 20;

bool seq_lt(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) < 0; }
bool seq_le(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) <= 0; }

enum class TcpState : std::uint8_t { Connecting, SynSent, SynRcvd, Established, TimeWait };

const char* state_name(TcpState s) {
  switch (s) {
    case TcpState::Connecting: return "connecting";
    case TcpState::SynSent: return "syn_sent";
    case TcpState::SynRcvd: return "syn_rcvd";
    case TcpState::Established: return "established";
    case TcpState::TimeWait: return "time_wait";
  }
  return "?";
}

// Initial sequence numbers, drawn from the kernel a batch at a time: one
// getrandom per connection was one of the few system calls between a
// guest's SYN and our SYN-ACK.
class IssPool {
 public:
  std::uint32_t next() {
    if (left_ == 0) refill();
    return pool_[--left_];
  }

 private:
  void refill() {
    if (getrandom(pool_.data(), sizeof pool_, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof pool_)) {
      const auto clock = static_cast<std::uint32_t>(monotonic_now() >> 2);
      for (std::size_t i = 0; i < pool_.size(); ++i) pool_[i] = clock + static_cast<std::uint32_t>(i) * 0x9e3779b9u;
    }
    left_ = pool_.size();
  }
  std::array<std::uint32_t, 64> pool_{};
  std::size_t left_ = 0;
};

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// VNET_TCP_NO_PEEK_OFF=1 makes the translator use its fallback for kernels
// without SO_PEEK_OFF on TCP (before Linux 6.9, e.g. Debian 12's 6.1), so
// tests cover it on any kernel. Read once, when a translator is built.
bool peek_off_disabled() {
  const char* v = ::getenv("VNET_TCP_NO_PEEK_OFF");
  return v && *v && std::strcmp(v, "0") != 0;
}

}  // namespace

struct TcpTranslator::State {
  struct Flow;
  struct Entry;
  explicit State(GuestIo& g)
      : io(g), table(g.flows()), alive(std::make_shared<bool>(true)), no_peek_off(peek_off_disabled()) {}
  GuestIo& io;
  FlowTable& table;
  // Before the flows: their reassembly queues give their bytes back to it.
  TcpReassembly::Budget reassembly_budget{kReassemblyBudget};
  std::unordered_map<FlowKey, std::unique_ptr<Flow>, FlowKeyHash> flows;
  std::uint32_t time_wait_flows = 0;
  // Guests decide how often these fire (a SYN at EMFILE, a flow per clash).
  log::RateLimited socket_log, flow_error_log;
  // Closed flows wait here until no handler of theirs can be on the stack.
  std::vector<std::unique_ptr<Flow>> dead;
  int depth = 0;
  std::vector<FlowKey> ack_queue;
  bool ack_flush_posted = false;
  std::shared_ptr<bool> alive;
  std::unique_ptr<std::uint8_t[]> scratch;
  bool no_peek_off;  // VNET_TCP_NO_PEEK_OFF: never use SO_PEEK_OFF
  IssPool iss_pool;

  // Entry points
  void on_segment(const IpAddr& src, const IpAddr& dst, Bytes l4, const SockAddr& target);
  void open_inbound(UniqueFd conn, const SockAddr& client, const IpAddr& guest, std::uint16_t guest_port);

  // Flow life
  Flow* create(const FlowKey& key, const GuestId& guest, UniqueFd sock, TcpState st);
  void release_socket(Flow& f);
  bool enable_peek_off(int fd) const;
  void free_dead();
  void destroy(Flow& f);
  void close_with_rst(Flow& f);
  void guest_reset(Flow& f);
  void enter_time_wait(Flow& f);
  void maybe_finished(Flow& f);

  // Events
  void on_socket(Flow& f, std::uint32_t events);
  void on_timer(Flow& f);
  void on_connected(Flow& f, std::uint32_t events);
  void flow_segment(Flow& f, const TcpPacket& tcp);
  void established_segment(Flow& f, const TcpPacket& tcp);
  void process_ack(Flow& f, const TcpPacket& tcp);
  bool is_duplicate_ack(const Flow& f, const TcpPacket& tcp, std::uint32_t wnd) const;
  void process_data(Flow& f, const TcpPacket& tcp);
  bool write_to_host(Flow& f, Bytes data);
  void keep_out_of_order(Flow& f, std::uint32_t seq, Bytes data, bool fin);
  void write_reassembled(Flow& f);
  void accept_guest_fin(Flow& f);
  void push_to_guest(Flow& f);
  void push_to_guest_fallback(Flow& f);
  bool sent_new_data(Flow& f, bool sent);
  std::size_t queue_cost(const Flow& f, std::size_t len) const;
  bool discard(Flow& f, std::size_t n);
  void widen_host_window(Flow& f);
  void rewind(Flow& f);
  void retransmit_first(Flow& f);
  void set_peek_offset(Flow& f, std::size_t offset);
  void arm_rto(Flow& f);

  // Output
  std::uint16_t compute_window(Flow& f);
  bool read_send_buffer(Flow& f);
  void note_send_buffer(Flow& f, std::uint32_t sndbuf, std::uint32_t queued);
  void spend_send_buffer(Flow& f, std::size_t sent);
  bool emit(Flow& f, std::uint8_t flags, std::uint32_t seq, std::size_t payload_len, bool syn_options = false,
            bool offloaded = false);
  struct SegmentRoom;
  SegmentRoom segment_room(const Flow& f);
  void send_fin(Flow& f);
  void note_fin_sent(Flow& f, std::uint32_t fin_seq);
  void schedule_ack(Flow& f);
  void flush_acks();
  void send_rst(const IpAddr& src, std::uint16_t sport, const IpAddr& dst, std::uint16_t dport, std::uint32_t seq,
                std::uint32_t ack, bool with_ack);
  void reply_rst(const IpAddr& src, const IpAddr& dst, const TcpPacket& tcp);
  // The largest segment the guest may get: the MTU less the IP and TCP headers.
  std::uint16_t max_mss(const IpAddr& guest) const {
    return static_cast<std::uint16_t>(io.config().mtu - (guest.is_v4() ? 40 : 60));
  }
  void set_events(Flow& f, std::uint32_t events);
};

// Marks a top-level entry (packet, socket event, timer): dead flows are
// freed only when no handler of theirs can be on the stack.
struct TcpTranslator::State::Entry {
  explicit Entry(TcpTranslator::State& s) : st(s) {
    if (st.depth == 0 && !st.dead.empty()) st.free_dead();
    ++st.depth;
  }
  ~Entry() { --st.depth; }
  TcpTranslator::State& st;
};

struct TcpTranslator::State::Flow {
  Flow(TcpTranslator::State& o, const FlowKey& k, const GuestId& g, UniqueFd s, TcpState st)
      : owner(&o), key(k), guest(g), sock(std::move(s)), state(st), timer(o.io.loop(), [this] {
          Entry e(*owner);
          owner->on_timer(*this);
        }), reassembly(o.reassembly_budget, kReassemblyPerFlow) {}
  ~Flow() {
    if (sock) owner->io.loop().remove(sock.get());
  }

  TcpTranslator::State* owner;
  FlowKey key;
  GuestId guest;  // whom the flow counts against (FlowTable)
  FlowTable::SendBuffer sndbuf;
  UniqueFd sock;
  TcpState state;
  Timer timer;
  bool dead = false;
  bool inbound = false;
  bool peek_off = false;  // SO_PEEK_OFF works on this socket
  std::uint32_t events = 0;
  // The loop turn in which a peek found the socket's receive queue empty
  // (a short read, or EAGAIN): the turn's EPOLLIN edge is then already
  // consumed, and data arriving later raises a new one (EPOLLET).
  std::uint64_t drained_turn = 0;
  // A peek found no new data past the in-flight bytes, and no EPOLLIN edge
  // came since: a guest segment (an upload's every one) need not peek again
  // only to get EAGAIN. An edge or a rewind clears it; a closed host
  // (rdhup) is always peeked, for its end of stream.
  bool host_drained = false;

  // Host -> guest sequence space.
  std::uint32_t iss = 0, snd_una = 0, snd_nxt = 0, snd_max = 0, fin_seq = 0;
  std::uint32_t snd_wnd = 0;      // the guest's window, in bytes
  std::uint8_t snd_wscale = 0;    // the guest's shift
  std::uint8_t rcv_wscale = 0;    // ours (0 unless the guest does window scaling)
  std::uint16_t mss = kDefaultGuestMss;
  // Guest -> host.
  std::uint32_t rcv_nxt = 0;
  std::uint32_t adv_wnd = 0;  // bytes we last computed as free
  // The host socket's send buffer as last read (SO_MEMINFO, truesize units)
  // and an upper bound on what the sends since then took of it.
  std::uint32_t mem_free = 0, mem_queued = 0, mem_spent = 0;
  std::uint8_t mem_sends = 0;
  bool mem_valid = false;
  std::uint32_t last_ack_sent = 0;
  std::uint16_t last_wnd_sent = 0;
  TcpReassembly reassembly;  // guest data past a hole
  bool sack_ok = false;      // both sides offered SACK

  bool guest_fin = false, host_eof = false, fin_sent = false, fin_acked = false, fin_seq_set = false;
  bool rdhup = false, want_out = false, ack_pending = false, must_ack = false;
  std::uint8_t dupacks = 0;
  // Fast recovery (RFC 6582): until snd_max at its start is acknowledged,
  // each partial ACK points at the next hole, resent at once.
  bool in_recovery = false;
  std::uint32_t recover = 0;
  int retries = 0;
  Nanos rto = kInitialRto;
  Nanos last_heard = monotonic_now();  // the guest's last segment on this flow
  std::uint64_t in_bytes = 0, out_bytes = 0;  // to / from the guest
  // The window last asked of the host socket (widen_host_window), and
  // in_bytes then.
  std::size_t host_window = 0;
  std::uint64_t in_bytes_at_widen = 0;

  std::uint32_t outstanding() const { return snd_max - snd_una; }
  std::size_t data_in_flight() const { return snd_nxt - snd_una - (fin_sent ? 1u : 0u); }
};

// ---------------------------------------------------------------- output

// The window is read from the socket (SO_MEMINFO) only now and then: in
// request/response traffic it was one system call per request, for a
// free space that hardly moves. Between readings the last one is spent
// down by what was sent since, counted high (payload plus an skb's
// overhead per 64 KiB), so the estimate errs toward a smaller window. It is
// read again after kMemReadEvery sends, once a quarter of it is spent,
// when the network's send buffer budget changed, or after the socket took
// less than it was given.
void TcpTranslator::State::spend_send_buffer(Flow& f, std::size_t sent) {
  constexpr std::size_t kSkbOverhead = 2048;
  const std::size_t spent = sent + kSkbOverhead * (1 + sent / 65536);
  f.mem_spent = static_cast<std::uint32_t>(std::min<std::size_t>(f.mem_spent + spent, UINT32_MAX));
  if (f.mem_sends < UINT8_MAX) f.mem_sends++;
}

bool TcpTranslator::State::read_send_buffer(Flow& f) {
  constexpr std::uint8_t kMemReadEvery = 16;
  if (f.mem_valid && f.mem_sends < kMemReadEvery && f.mem_spent < f.mem_free / 4 &&
      table.send_buffer_current(f.sndbuf))
    return true;
  std::uint32_t mem[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof mem;
  f.mem_valid = f.sock && getsockopt(f.sock.get(), SOL_SOCKET, SO_MEMINFO, mem, &len) == 0;
  if (!f.mem_valid) return false;
  table.rebalance_send_buffer(f.sock.get(), f.sndbuf, mem[SK_MEMINFO_WMEM_QUEUED]);
  const std::uint32_t sndbuf = mem[SK_MEMINFO_SNDBUF], queued = mem[SK_MEMINFO_WMEM_QUEUED];
  note_send_buffer(f, sndbuf, queued);
  return true;
}

// A reading of the socket's send buffer (truesize units), from SO_MEMINFO
// or known without one; the sends since are counted from zero.
void TcpTranslator::State::note_send_buffer(Flow& f, std::uint32_t sndbuf, std::uint32_t queued) {
  f.mem_free = sndbuf > queued ? sndbuf - queued : 0;
  f.mem_queued = queued;
  f.mem_spent = 0;
  f.mem_sends = 0;
  f.mem_valid = true;
}

std::uint16_t TcpTranslator::State::compute_window(Flow& f) {
  std::uint32_t free_bytes = 0, queued = 0;
  if (read_send_buffer(f)) {
    // Buffer accounting is in truesize (payload plus skb overhead), like the
    // doubled SO_SNDBUF: half of it is what send() surely takes, so the
    // guest is not invited to send what we would only ACK in part.
    free_bytes = f.mem_free > f.mem_spent ? (f.mem_free - f.mem_spent) / 2 : 0;
    queued = f.mem_queued + f.mem_spent;
  }
  f.adv_wnd = free_bytes;
  // The kernel reports writable once free >= queued / 2; below that an
  // EPOLLOUT edge will come, and with it our window update.
  if (f.sock && f.state == TcpState::Established && !f.guest_fin && !f.want_out && free_bytes < queued / 2) {
    f.want_out = true;
    set_events(f, f.events | EPOLLOUT);
  }
  return static_cast<std::uint16_t>(std::min<std::uint32_t>(free_bytes >> f.rcv_wscale, 0xffff));
}

bool TcpTranslator::State::emit(Flow& f, std::uint8_t flags, std::uint32_t seq, std::size_t payload_len,
                                bool syn_options, bool offloaded) {
  TcpRepr r;
  r.src_port = f.key.remote_port;
  r.dst_port = f.key.guest_port;
  r.seq = seq;
  r.ack = (flags & TcpFlag::Ack) ? f.rcv_nxt : 0;
  r.flags = flags;
  if (syn_options) {
    r.options.mss = max_mss(f.key.guest);
    if (f.rcv_wscale) r.options.window_scale = f.rcv_wscale;
    r.options.sack_permitted = f.sack_ok;
    r.window = static_cast<std::uint16_t>(std::min<std::uint32_t>(f.adv_wnd, 0xffff));
  } else {
    r.window = static_cast<std::uint16_t>(std::min<std::uint32_t>(f.adv_wnd >> f.rcv_wscale, 0xffff));
    // Only pure ACKs carry SACK blocks: a data segment's payload was peeked
    // in place right behind a bare header.
    if (payload_len == 0 && f.sack_ok && !f.reassembly.empty()) {
      r.options.sack_count = static_cast<std::uint8_t>(f.reassembly.sack_blocks(f.rcv_nxt, r.options.sack));
    }
  }
  // An offloaded segment's checksum is left to the guest (or the switch):
  // the header is written alone, the gateway puts the pseudo-header sum in.
  r.payload_len = offloaded ? 0 : static_cast<std::uint16_t>(payload_len);
  MutBytes l4 = offloaded ? io.l4_offload_buffer() : io.l4_buffer();
  if (r.header_len() + payload_len > l4.size()) return false;
  const std::size_t hdr = r.emit(l4, f.key.remote, f.key.guest);
  if (hdr == 0) return false;
  if (flags & TcpFlag::Ack) {
    f.last_ack_sent = f.rcv_nxt;
    f.last_wnd_sent = r.window;
    f.must_ack = false;
  }
  if (offloaded) return io.send_tcp_offloaded(f.key.remote, f.key.guest, hdr + payload_len, f.mss);
  return io.send_l4_in_place(f.key.remote, f.key.guest, IpProtocol::Tcp, hdr + payload_len);
}

void TcpTranslator::State::send_rst(const IpAddr& src, std::uint16_t sport, const IpAddr& dst, std::uint16_t dport,
                                    std::uint32_t seq, std::uint32_t ack, bool with_ack) {
  TcpRepr r;
  r.src_port = sport;
  r.dst_port = dport;
  r.seq = seq;
  r.ack = with_ack ? ack : 0;
  r.flags = static_cast<std::uint8_t>(TcpFlag::Rst | (with_ack ? TcpFlag::Ack : 0));
  const std::size_t hdr = r.emit(io.l4_buffer(), src, dst);
  if (hdr && io.send_l4_in_place(src, dst, IpProtocol::Tcp, hdr)) io.counters().tcp_rst_sent++;
}

// RFC 9293 3.10.7.1: the reset for a segment that belongs to no connection.
void TcpTranslator::State::reply_rst(const IpAddr& src, const IpAddr& dst, const TcpPacket& tcp) {
  if (tcp.ack()) {
    send_rst(dst, tcp.dst_port(), src, tcp.src_port(), tcp.ack_number(), 0, false);
  } else {
    send_rst(dst, tcp.dst_port(), src, tcp.src_port(), 0,
             tcp.seq_number() + static_cast<std::uint32_t>(tcp.segment_len()), true);
  }
}

void TcpTranslator::State::schedule_ack(Flow& f) {
  if (f.ack_pending) return;
  f.ack_pending = true;
  ack_queue.push_back(f.key);
  if (ack_flush_posted) return;
  ack_flush_posted = true;
  std::weak_ptr<bool> token = alive;
  io.loop().post([this, token] {
    if (token.expired()) return;
    Entry e(*this);
    flush_acks();
  });
}

void TcpTranslator::State::flush_acks() {
  ack_flush_posted = false;
  std::vector<FlowKey> keys;
  keys.swap(ack_queue);
  for (const FlowKey& k : keys) {
    auto it = flows.find(k);
    if (it == flows.end()) continue;
    Flow& f = *it->second;
    f.ack_pending = false;
    if (f.dead || (f.state != TcpState::Established && f.state != TcpState::TimeWait)) continue;
    const std::uint16_t wnd = compute_window(f);
    if (f.must_ack || f.last_ack_sent != f.rcv_nxt || f.last_wnd_sent != wnd) {
      emit(f, TcpFlag::Ack, f.snd_nxt, 0);
    }
  }
  // The larger of the two is kept for the next round, unless a burst (10,000
  // flows closing at once) made it large.
  constexpr std::size_t kKeepAckQueue = 1024;
  if (ack_queue.capacity() < keys.capacity() && keys.capacity() <= kKeepAckQueue) ack_queue.swap(keys), ack_queue.clear();
}

void TcpTranslator::State::set_events(Flow& f, std::uint32_t events) {
  if (f.events == events || !f.sock) return;
  f.events = events;
  io.loop().modify(f.sock.get(), events);
}

// ---------------------------------------------------------------- flow life

// TIME_WAIT flows hold no socket and do not count against the FlowTable's
// caps: a guest that opens and closes connections fast must not be refused
// for connections it ended.
TcpTranslator::State::Flow* TcpTranslator::State::create(const FlowKey& key, const GuestId& guest, UniqueFd sock,
                                                         TcpState st) {
  auto owned = std::make_unique<Flow>(*this, key, guest, std::move(sock), st);
  Flow* f = owned.get();
  flows.emplace(key, std::move(owned));
  table.add(guest, FlowKind::Tcp);
  if (st == TcpState::Connecting) table.add_connect(guest);
  table.size_send_buffer(f->sock.get(), f->sndbuf);
  io.counters().tcp_flows++;
  return f;
}

void TcpTranslator::State::release_socket(Flow& f) {
  if (!f.sock) return;
  io.loop().remove(f.sock.get());
  f.sock.reset();
  table.release_send_buffer(f.sndbuf);
}

bool TcpTranslator::State::enable_peek_off(int fd) const {
  if (no_peek_off) return false;
  int zero = 0;
  return setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero) == 0;
}

// Frees closed flows (no handler of theirs is on the stack) and, after a
// burst, the table's spare buckets; the FlowTable may trim the heap.
void TcpTranslator::State::free_dead() {
  const std::size_t n = dead.size();
  dead.clear();
  shrink_if_sparse(dead);
  if (flows.bucket_count() > 1024 && flows.size() < flows.bucket_count() / 8) flows.rehash(0);
  table.freed(n);
}

void TcpTranslator::State::destroy(Flow& f) {
  if (f.dead) return;
  f.dead = true;
  f.timer.cancel();
  if (f.state == TcpState::Connecting) table.remove_connect(f.guest);
  release_socket(f);
  if (f.state == TcpState::TimeWait) time_wait_flows--;
  else table.remove(f.guest, FlowKind::Tcp);
  auto it = flows.find(f.key);
  if (it != flows.end() && it->second.get() == &f) {
    dead.push_back(std::move(it->second));
    flows.erase(it);
  }
}

void TcpTranslator::State::close_with_rst(Flow& f) {
  if (f.state != TcpState::TimeWait) send_rst(f.key.remote, f.key.remote_port, f.key.guest, f.key.guest_port,
                                              f.snd_nxt, f.rcv_nxt, true);
  destroy(f);
}

// The guest reset the connection: reset the host peer too (SO_LINGER 0
// makes close() send an RST instead of a FIN).
void TcpTranslator::State::guest_reset(Flow& f) {
  if (f.sock) {
    linger lg{1, 0};
    setsockopt(f.sock.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  destroy(f);
}

void TcpTranslator::State::enter_time_wait(Flow& f) {
  f.state = TcpState::TimeWait;
  release_socket(f);
  table.remove(f.guest, FlowKind::Tcp);
  // Bounded like live flows; past that, old connections simply end at once.
  if (++time_wait_flows > io.config().max_flows) {
    destroy(f);
    return;
  }
  f.timer.arm_in(kTimeWait);
}

void TcpTranslator::State::maybe_finished(Flow& f) {
  if (!f.dead && f.state == TcpState::Established && f.guest_fin && f.fin_acked) enter_time_wait(f);
}

void TcpTranslator::State::arm_rto(Flow& f) { f.timer.arm_in(f.rto); }

// ---------------------------------------------------------------- guest input

void TcpTranslator::State::on_segment(const IpAddr& src, const IpAddr& dst, Bytes l4, const SockAddr& target) {
  Entry e(*this);
  auto tcp = TcpPacket::parse(l4);
  if (!tcp) {
    io.counters().drop_malformed++;
    return;
  }
  if (!io.l4_checksum_offloaded() && !tcp->verify_checksum(src, dst)) {
    io.counters().drop_bad_checksum++;
    return;
  }
  const FlowKey key{src, tcp->src_port(), dst, tcp->dst_port()};
  if (auto it = flows.find(key); it != flows.end()) {
    Flow& f = *it->second;
    // A new SYN on a port pair still in TIME_WAIT (the guest reuses ports
    // quickly, as connect-heavy clients do) starts a new connection.
    const bool reuse = f.state == TcpState::TimeWait && tcp->syn() && !tcp->ack();
    if (!reuse) {
      flow_segment(f, *tcp);
      return;
    }
    destroy(f);
  }
  if (tcp->rst()) return;  // never answer a reset with a reset
  if (!tcp->syn() || tcp->ack()) {
    reply_rst(src, dst, *tcp);
    return;
  }
  // A new connection. A SYN with data (TCP Fast Open without a cookie we
  // never issued) or with FIN is not something a real stack sends.
  auto opts = tcp->parse_options();
  if (tcp->fin() || !tcp->payload().empty() || !opts || key.remote_port == 0 || key.guest_port == 0) {
    io.counters().drop_malformed++;
    return;
  }
  if (target.family() == AF_UNSPEC) {
    // The gateway counted host-loopback refusals itself.
    const bool to_gateway = dst == IpAddr(io.config().gateway) || dst == IpAddr(io.config().gateway6);
    if (!(to_gateway && !io.config().host_loopback)) io.counters().drop_restricted++;
    io.counters().tcp_refused++;
    reply_rst(src, dst, *tcp);
    return;
  }
  const GuestId guest = table.guest_of(key.guest);
  if (!table.admit(guest, FlowKind::Tcp) || !table.admit_connect(guest)) {
    reply_rst(src, dst, *tcp);
    return;
  }
  UniqueFd sock(::socket(target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!sock) {
    socket_log.warn("nat tcp: socket: {}", std::strerror(errno));
    io.counters().tcp_refused++;
    reply_rst(src, dst, *tcp);
    return;
  }
  set_nodelay(sock.get());
  if (::connect(sock.get(), target.get(), target.length) != 0 && errno != EINPROGRESS) {
    io.counters().tcp_refused++;
    reply_rst(src, dst, *tcp);
    return;
  }
  Flow* f = create(key, guest, std::move(sock), TcpState::Connecting);
  f->rcv_nxt = tcp->seq_number() + 1;
  f->snd_wnd = tcp->window();
  if (opts->mss) f->mss = *opts->mss;
  if (opts->window_scale) {
    f->snd_wscale = *opts->window_scale;
    f->rcv_wscale = kOurWindowScale;
  }
  f->sack_ok = opts->sack_permitted;
  f->mss = std::clamp<std::uint16_t>(f->mss, 64, max_mss(key.guest));
  f->events = EPOLLOUT;
  io.loop().add(f->sock.get(), EPOLLOUT, [f](std::uint32_t ev) {
    Entry en(*f->owner);
    f->owner->on_socket(*f, ev);
  });
  f->timer.arm_in(kConnectTimeout);
}

// A failed connect shows as EPOLLERR or EPOLLHUP, so a plain EPOLLOUT needs
// no SO_ERROR read: this runs between the guest's SYN and our SYN-ACK.
void TcpTranslator::State::on_connected(Flow& f, std::uint32_t events) {
  int err = 0;
  socklen_t len = sizeof err;
  if ((events & (EPOLLERR | EPOLLHUP)) && getsockopt(f.sock.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    log::debug("nat tcp: connect for guest port {} failed: {}", f.key.guest_port, std::strerror(err));
    io.counters().tcp_refused++;
    f.snd_nxt = 0;
    send_rst(f.key.remote, f.key.remote_port, f.key.guest, f.key.guest_port, 0, f.rcv_nxt, true);
    destroy(f);
    return;
  }
  table.remove_connect(f.guest);
  f.state = TcpState::SynRcvd;
  f.peek_off = enable_peek_off(f.sock.get());
  f.iss = iss_pool.next();
  f.snd_una = f.iss;
  f.snd_nxt = f.snd_max = f.iss + 1;
  // Nothing was sent on the new socket yet: all of its send buffer is free,
  // and the SYN-ACK's window needs no SO_MEMINFO.
  if (f.sndbuf.granted > 0) note_send_buffer(f, f.sndbuf.granted, 0);
  compute_window(f);
  set_events(f, EPOLLIN | EPOLLRDHUP | EPOLLET);
  emit(f, TcpFlag::Syn | TcpFlag::Ack, f.iss, 0, true);
  f.retries = 0;
  f.rto = kInitialRto;
  arm_rto(f);
}

void TcpTranslator::State::flow_segment(Flow& f, const TcpPacket& tcp) {
  if (tcp.rst()) {
    // RFC 5961 in spirit: only a reset inside what we expect is believed.
    const std::uint32_t seq = tcp.seq_number();
    const bool in_window = f.state == TcpState::SynSent ? (tcp.ack() && tcp.ack_number() == f.iss + 1)
                                                        : seq_le(f.rcv_nxt, seq) &&
                                                              seq_le(seq, f.rcv_nxt + std::max<std::uint32_t>(f.adv_wnd, 1));
    if (in_window || f.state == TcpState::Connecting || f.state == TcpState::SynRcvd) guest_reset(f);
    return;
  }
  switch (f.state) {
    case TcpState::Connecting:
      return;  // a repeated SYN while the host connect runs
    case TcpState::SynSent: {
      if (!tcp.syn() || !tcp.ack() || tcp.ack_number() != f.iss + 1) return;
      auto opts = tcp.parse_options();
      if (!opts) {
        io.counters().drop_malformed++;
        return;
      }
      if (opts->mss) f.mss = std::max<std::uint16_t>(*opts->mss, 64);
      f.mss = std::min<std::uint16_t>(f.mss, max_mss(f.key.guest));
      if (opts->window_scale) {
        f.snd_wscale = *opts->window_scale;
      } else {
        f.rcv_wscale = 0;
      }
      f.sack_ok = opts->sack_permitted;
      f.rcv_nxt = tcp.seq_number() + 1;
      f.snd_una = f.iss + 1;
      f.snd_wnd = tcp.window();  // never scaled on a SYN
      f.state = TcpState::Established;
      f.retries = 0;
      f.rto = kInitialRto;
      f.timer.cancel();
      compute_window(f);
      emit(f, TcpFlag::Ack, f.snd_nxt, 0);
      push_to_guest(f);
      return;
    }
    case TcpState::SynRcvd:
      if (tcp.syn() && !tcp.ack()) {
        emit(f, TcpFlag::Syn | TcpFlag::Ack, f.iss, 0, true);
        return;
      }
      if (!tcp.ack() || tcp.ack_number() != f.iss + 1) return;
      f.state = TcpState::Established;
      f.snd_una = f.iss + 1;
      f.snd_wnd = std::uint32_t{tcp.window()} << f.snd_wscale;
      f.timer.cancel();
      f.retries = 0;
      established_segment(f, tcp);
      if (!f.dead) push_to_guest(f);
      return;
    case TcpState::Established:
      established_segment(f, tcp);
      return;
    case TcpState::TimeWait:
      if (tcp.fin()) {
        f.must_ack = true;
        schedule_ack(f);
      }
      return;
  }
}

void TcpTranslator::State::established_segment(Flow& f, const TcpPacket& tcp) {
  if (tcp.syn()) {
    // Our ACK of the guest's SYN-ACK got lost (inbound): repeat it.
    f.must_ack = true;
    schedule_ack(f);
    return;
  }
  if (tcp.ack()) {
    process_ack(f, tcp);
    if (f.dead) return;
  }
  if (!tcp.payload().empty()) {
    process_data(f, tcp);
    if (f.dead) return;
  } else if (!tcp.fin() && seq_lt(tcp.seq_number(), f.rcv_nxt)) {
    f.must_ack = true;  // a window probe or keepalive: answer with our window
    schedule_ack(f);
  }
  if (tcp.fin()) {
    const std::uint32_t fin_at = tcp.seq_number() + static_cast<std::uint32_t>(tcp.payload().size());
    if (fin_at == f.rcv_nxt) {
      accept_guest_fin(f);
    } else {
      // A bare FIN past a hole waits with the data before it (and is
      // answered there).
      if (tcp.payload().empty() && !f.guest_fin && f.sock && seq_lt(f.rcv_nxt, fin_at)) {
        keep_out_of_order(f, fin_at, {}, true);
      } else {
        f.must_ack = true;
        schedule_ack(f);
      }
    }
  }
  push_to_guest(f);
  if (!f.dead) maybe_finished(f);
}

void TcpTranslator::State::process_ack(Flow& f, const TcpPacket& tcp) {
  f.last_heard = monotonic_now();
  const std::uint32_t ack = tcp.ack_number();
  const std::uint32_t wnd = std::uint32_t{tcp.window()} << f.snd_wscale;
  if (seq_lt(f.snd_max, ack)) {  // acknowledges what we never sent
    f.must_ack = true;
    schedule_ack(f);
    return;
  }
  if (seq_lt(ack, f.snd_una)) return;  // old
  const std::uint32_t acked = ack - f.snd_una;
  if (acked > 0) {
    const bool partial = f.in_recovery && seq_lt(ack, f.recover);
    f.in_recovery = partial;
    std::uint32_t data_acked = acked;
    if (f.fin_seq_set && !f.fin_acked && seq_lt(f.fin_seq, ack)) {
      f.fin_acked = true;
      data_acked--;
    }
    if (data_acked > 0 && !discard(f, data_acked)) return;
    f.in_bytes += data_acked;
    f.snd_una = ack;
    if (seq_lt(f.snd_nxt, ack)) {
      // An ACK for data sent before a rewind: skip past it.
      f.snd_nxt = ack;
      set_peek_offset(f, f.data_in_flight());
    }
    f.dupacks = 0;
    f.retries = 0;
    f.rto = kInitialRto;
    if (f.outstanding() > 0) {
      arm_rto(f);
    } else {
      f.timer.cancel();
    }
    if (partial) retransmit_first(f);
  } else if (tcp.payload().empty() && !tcp.fin() && f.outstanding() > 0 && is_duplicate_ack(f, tcp, wnd)) {
    if (++f.dupacks == 3 && !f.in_recovery) {
      f.in_recovery = true;
      f.recover = f.snd_max;
      retransmit_first(f);
    }
  }
  const bool opened = wnd > f.snd_wnd;
  f.snd_wnd = wnd;
  if (opened && wnd > 0 && f.outstanding() == 0) {
    f.timer.cancel();  // no more zero-window probing
    f.retries = 0;
  }
}

// RFC 5681's duplicate ACK keeps the window unchanged; a guest holding our
// segments past a hole shrinks its window as they pile up, so an ACK that
// reports them in SACK blocks counts too (as Linux counts SACKed segments).
bool TcpTranslator::State::is_duplicate_ack(const Flow& f, const TcpPacket& tcp, std::uint32_t wnd) const {
  if (wnd == f.snd_wnd) return true;
  if (!f.sack_ok) return false;
  auto opts = tcp.parse_options();
  return opts && opts->sack_count > 0;
}

void TcpTranslator::State::process_data(Flow& f, const TcpPacket& tcp) {
  Bytes p = tcp.payload();
  const std::uint32_t seq = tcp.seq_number();
  f.must_ack = true;  // every data segment gets an answer, duplicate or not
  schedule_ack(f);
  if (f.guest_fin || !f.sock) return;
  if (seq_lt(f.rcv_nxt, seq)) {
    keep_out_of_order(f, seq, p, tcp.fin());
    return;
  }
  const std::uint32_t skip = f.rcv_nxt - seq;
  if (skip >= p.size()) return;  // all old
  if (write_to_host(f, p.subspan(skip))) write_reassembled(f);
}

// Writes guest data to the host socket; true if the socket took all of it.
// A short write watches EPOLLOUT (its window update lets the guest resend).
bool TcpTranslator::State::write_to_host(Flow& f, Bytes data) {
  const ssize_t n = ::send(f.sock.get(), data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    log::debug("nat tcp: send to host: {}", std::strerror(errno));
    close_with_rst(f);
    return false;
  }
  if (n > 0) {
    f.rcv_nxt += static_cast<std::uint32_t>(n);
    f.out_bytes += static_cast<std::uint64_t>(n);
    spend_send_buffer(f, static_cast<std::size_t>(n));
  }
  if (n < 0 || static_cast<std::size_t>(n) < data.size()) {
    f.mem_valid = false;
    f.want_out = true;
    set_events(f, f.events | EPOLLOUT);
    return false;
  }
  return true;
}

// Within the window we last advertised. Each segment past a hole is
// answered at once, not with the loop round's one ACK (RFC 5681 4.2): an
// ACK carries at most four SACK blocks, and the guest's scoreboard is built
// from the sequence of them, the latest segment's block first in each.
void TcpTranslator::State::keep_out_of_order(Flow& f, std::uint32_t seq, Bytes data, bool fin) {
  const std::uint32_t window = std::max(f.adv_wnd, std::uint32_t{f.last_wnd_sent} << f.rcv_wscale);
  switch (f.reassembly.insert(f.rcv_nxt, window, seq, data, fin)) {
    case TcpReassembly::Result::Stored:
      io.counters().tcp_ooo_kept++;
      break;
    case TcpReassembly::Result::NoRoom:
      io.counters().tcp_ooo_refused++;
      break;
    case TcpReassembly::Result::Duplicate:
      break;  // answered too: the guest may have missed our last SACK
  }
  emit(f, TcpFlag::Ack, f.snd_nxt, 0);
}

// The hole was filled: what was kept behind it goes to the socket too.
void TcpTranslator::State::write_reassembled(Flow& f) {
  if (f.reassembly.empty()) return;
  for (Bytes next = f.reassembly.contiguous(f.rcv_nxt); !next.empty(); next = f.reassembly.contiguous(f.rcv_nxt)) {
    const bool all = write_to_host(f, next);
    f.reassembly.advance(f.rcv_nxt);
    if (!all) return;
  }
  f.reassembly.advance(f.rcv_nxt);
  if (f.reassembly.fin_at(f.rcv_nxt)) accept_guest_fin(f);
}

void TcpTranslator::State::accept_guest_fin(Flow& f) {
  if (!f.guest_fin) {
    f.guest_fin = true;
    f.rcv_nxt++;
    if (f.sock) ::shutdown(f.sock.get(), SHUT_WR);
    f.reassembly.clear();
  }
  f.must_ack = true;
  schedule_ack(f);
}

// ---------------------------------------------------------------- host input

void TcpTranslator::State::on_socket(Flow& f, std::uint32_t ev) {
  if (f.dead) return;
  if (f.state == TcpState::Connecting) {
    if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(f, ev);
    return;
  }
  if (ev & EPOLLERR) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(f.sock.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      log::debug("nat tcp: host connection error: {}", std::strerror(err));
      close_with_rst(f);
      return;
    }
  }
  if (ev & (EPOLLRDHUP | EPOLLHUP)) f.rdhup = true;
  const bool stale_edge = !(ev & (EPOLLRDHUP | EPOLLHUP)) && f.drained_turn == io.loop().turn();
  if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) && !stale_edge) f.host_drained = false;
  if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) && !stale_edge) push_to_guest(f);
  if (f.dead) return;
  if ((ev & EPOLLOUT) && f.want_out) {
    f.want_out = false;
    f.mem_valid = false;  // the peer read: more room than the estimate says
    set_events(f, f.events & ~static_cast<std::uint32_t>(EPOLLOUT));
    write_reassembled(f);
    if (f.dead) return;
    if (f.state == TcpState::Established) {
      f.must_ack = true;  // the window update that lets the guest resend
      schedule_ack(f);
    }
  }
}

// Where the next data segment toward the guest is built and how much it
// may carry: one MSS, or, where the gateway offers offloads, a
// super-segment of whole MSS pieces that the guest's kernel (or the
// switch) cuts: one peek and one frame instead of ~44.
struct TcpTranslator::State::SegmentRoom {
  MutBytes l4;
  std::size_t max_payload;
  bool offloaded;
};

TcpTranslator::State::SegmentRoom TcpTranslator::State::segment_room(const Flow& f) {
  // Also a single MSS (a 64 KiB MTU): its checksum is then left partial
  // too, so neither vnet nor the guest's kernel sums 64 KiB in software
  // when the guest's port takes offloads.
  if (const std::size_t room = io.tcp_offload_room(f.key.guest); room >= f.mss) {
    const MutBytes l4 = io.l4_offload_buffer();
    std::size_t max = std::min(room, l4.size() - kDataOffset);
    max -= max % f.mss;
    if (max >= f.mss) return {l4, max, true};
  }
  const MutBytes l4 = io.l4_buffer();
  return {l4, std::min<std::size_t>(f.mss, l4.size() - kDataOffset), false};
}

void TcpTranslator::State::push_to_guest(Flow& f) {
  if (f.dead || f.state != TcpState::Established || !f.sock || f.fin_sent) return;
  if (!f.peek_off) {
    push_to_guest_fallback(f);
    return;
  }
  // Once the host closed, a peek past the data is what finds the end of
  // the stream (recv returns 0), and no edge will come to ask for it.
  if (f.host_drained && !f.rdhup) return;
  const SegmentRoom seg = segment_room(f);
  const std::size_t mss = seg.max_payload;
  std::size_t room = io.guest_queue_room(f.key.guest);
  bool sent = false;
  for (;;) {
    const std::size_t in_flight = f.data_in_flight();
    if (in_flight >= f.snd_wnd) {
      if (f.snd_wnd == 0 && f.outstanding() == 0 && !f.timer.armed()) arm_rto(f);  // zero-window probe
      break;
    }
    const std::size_t len = std::min(mss, f.snd_wnd - in_flight);
    const std::size_t cost = queue_cost(f, len);
    if (room < cost + kQueueReserve) {
      if (f.outstanding() == 0 && !f.timer.armed()) f.timer.arm_in(kQueueFullRetry);
      break;
    }
    room -= cost;
    const ssize_t n = ::recv(f.sock.get(), seg.l4.data() + kDataOffset, len, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
      // TCP's recv returns short only with the receive queue (and backlog)
      // empty: asking again would only get EAGAIN, one syscall per
      // request/response exchange for nothing. A host that has closed
      // (its FIN comes after all its data) then has nothing more either:
      // its FIN rides on this segment, one peek and one frame fewer.
      const bool short_read = static_cast<std::size_t>(n) < len;
      const bool with_fin = short_read && f.rdhup && static_cast<std::size_t>(n) <= f.mss;
      const std::uint8_t flags = TcpFlag::Ack | TcpFlag::Psh | (with_fin ? TcpFlag::Fin : 0);
      emit(f, flags, f.snd_nxt, static_cast<std::size_t>(n), false, seg.offloaded);
      f.snd_nxt += static_cast<std::uint32_t>(n);
      if (seq_lt(f.snd_max, f.snd_nxt)) f.snd_max = f.snd_nxt;
      sent = true;
      if (with_fin) {
        f.host_eof = true;
        note_fin_sent(f, f.snd_nxt);
      }
      if (short_read) {
        f.drained_turn = io.loop().turn();
        f.host_drained = true;
        widen_host_window(f);
        break;
      }
      continue;
    }
    if (n == 0) {
      f.host_eof = true;
      send_fin(f);
      sent = true;
      break;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      f.drained_turn = io.loop().turn();
      f.host_drained = true;
      widen_host_window(f);
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
    log::debug("nat tcp: recv from host: {}", std::strerror(errno));
    close_with_rst(f);
    return;
  }
  sent_new_data(f, sent);
}

// Without SO_PEEK_OFF every peek starts at the head of the receive queue, so
// reaching new data means copying all the data in flight again. Peeking per
// segment made that quadratic; instead one peek per round takes the data in
// flight plus everything the window allows into the scratch buffer, and the
// segments are cut from there. A round runs only when the new data it can
// send (queued beyond what is in flight, within the window) is at least a
// quarter of the data in flight (or it is the last of a closed stream), so each new byte
// costs at most five bytes peeked: linear in the transfer.
void TcpTranslator::State::push_to_guest_fallback(Flow& f) {
  const std::size_t in_flight = f.data_in_flight();
  const std::size_t limit = std::min<std::size_t>(f.snd_wnd, kFallbackMaxInFlight);
  if (in_flight >= limit) {
    if (f.snd_wnd == 0 && f.outstanding() == 0 && !f.timer.armed()) arm_rto(f);  // zero-window probe
    return;
  }
  // New data waiting behind what is in flight (SIOCINQ: the queue's length).
  int queued = 0;
  if (::ioctl(f.sock.get(), SIOCINQ, &queued) != 0) queued = 0;
  const std::size_t avail = static_cast<std::size_t>(queued) > in_flight ? queued - in_flight : 0;
  std::size_t take = std::min(limit - in_flight, avail);
  // No more than the guest's port queue takes (see push_to_guest).
  const std::size_t room = io.guest_queue_room(f.key.guest);
  const std::size_t fits = room > kQueueReserve ? (room - kQueueReserve) / 2 : 0;
  if (take > fits) {
    take = fits;
    if (take == 0 && f.outstanding() == 0 && !f.timer.armed()) f.timer.arm_in(kQueueFullRetry);
  }
  // Too little to be worth re-reading what is in flight: the next ACKs
  // shrink that, or more data comes. Once the host has closed, the round
  // that takes all that is left (and then the FIN) runs whatever its size:
  // that happens once, whereas a closed host with much data queued behind
  // the window must still wait for a quarter, or each ACK would re-peek the
  // whole window for one segment.
  const bool last_round = f.rdhup && take == avail;
  if (!last_round && (take == 0 || take < in_flight / 4)) return;
  if (!scratch) scratch.reset(new std::uint8_t[kScratchSize]);
  const ssize_t got = ::recv(f.sock.get(), scratch.get(), in_flight + take, MSG_PEEK | MSG_DONTWAIT);
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    log::debug("nat tcp: recv from host: {}", std::strerror(errno));
    close_with_rst(f);
    return;
  }
  io.counters().tcp_fallback_peeked += static_cast<std::uint64_t>(got);
  const SegmentRoom seg = segment_room(f);
  bool sent = false;
  for (std::size_t at = in_flight; at < static_cast<std::size_t>(got);) {
    const std::size_t len = std::min(seg.max_payload, static_cast<std::size_t>(got) - at);
    std::memcpy(seg.l4.data() + kDataOffset, scratch.get() + at, len);
    emit(f, TcpFlag::Ack | TcpFlag::Psh, f.snd_nxt, len, false, seg.offloaded);
    f.snd_nxt += static_cast<std::uint32_t>(len);
    if (seq_lt(f.snd_max, f.snd_nxt)) f.snd_max = f.snd_nxt;
    io.counters().tcp_fallback_sent += len;
    at += len;
    sent = true;
  }
  // End of stream once all the host sent is in flight: got == 0 with an
  // empty queue, or a closed peer (rdhup) whose data all fit in this peek.
  if (got == 0 || (f.rdhup && take == avail && static_cast<std::size_t>(got) == in_flight + take)) {
    f.host_eof = true;
    send_fin(f);
    sent = true;
  }
  sent_new_data(f, sent);
}

std::size_t TcpTranslator::State::queue_cost(const Flow& f, std::size_t len) const {
  return len + (len / f.mss + 1) * kFrameQueueOverhead;
}

bool TcpTranslator::State::sent_new_data(Flow& f, bool sent) {
  if (sent && !f.timer.armed()) arm_rto(f);
  return sent;
}

void TcpTranslator::State::send_fin(Flow& f) {
  emit(f, TcpFlag::Fin | TcpFlag::Ack, f.snd_nxt, 0);
  note_fin_sent(f, f.snd_nxt);
}

// The FIN (alone or on the last data segment) took sequence number fin_seq.
void TcpTranslator::State::note_fin_sent(Flow& f, std::uint32_t fin_seq) {
  f.fin_seq = fin_seq;
  f.fin_seq_set = true;
  f.snd_nxt = fin_seq + 1;
  f.fin_sent = true;
  if (seq_lt(f.snd_max, f.snd_nxt)) f.snd_max = f.snd_nxt;
}

bool TcpTranslator::State::discard(Flow& f, std::size_t n) {
  if (!f.sock) return true;
  while (n > 0) {
    ssize_t got = ::recv(f.sock.get(), nullptr, n, MSG_TRUNC | MSG_DONTWAIT);
    if (got < 0 && errno == EFAULT) {
      if (!scratch) scratch.reset(new std::uint8_t[kScratchSize]);
      got = ::recv(f.sock.get(), scratch.get(), std::min(n, kScratchSize), MSG_DONTWAIT);
    }
    if (got <= 0) {
      flow_error_log.warn("nat tcp: cannot drop acknowledged bytes: {}", got < 0 ? std::strerror(errno) : "eof");
      close_with_rst(f);
      return false;
    }
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

// Called when a peek found the socket holding nothing past the data in
// flight (see the top).
void TcpTranslator::State::widen_host_window(Flow& f) {
  const std::size_t in_flight = f.data_in_flight();
  if (in_flight < kWidenFloor || in_flight + f.mss > f.snd_wnd) return;  // not the buffer that limits
  if (f.in_bytes - f.in_bytes_at_widen < in_flight) return;  // the guest has not acknowledged that much
  const std::size_t want = std::min(2 * in_flight, kMaxHostWindow);
  if (want <= f.host_window) return;
  const int lowat = static_cast<int>(want), one = 1;
  if (setsockopt(f.sock.get(), SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) != 0) return;
  setsockopt(f.sock.get(), SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
  f.host_window = want;
  f.in_bytes_at_widen = f.in_bytes;
  io.counters().tcp_host_window_widened++;
}

void TcpTranslator::State::rewind(Flow& f) {
  f.snd_nxt = f.snd_una;
  f.host_drained = false;  // the in-flight bytes are to be peeked again
  if (f.fin_sent && !f.fin_acked) f.fin_sent = false;
  set_peek_offset(f, 0);
}

// Fast retransmit: the first unacked segment only, peeked from the head.
void TcpTranslator::State::retransmit_first(Flow& f) {
  if (!f.sock) return;
  if (f.fin_sent && f.fin_seq == f.snd_una) {
    emit(f, TcpFlag::Fin | TcpFlag::Ack, f.fin_seq, 0);
    return;
  }
  MutBytes l4 = io.l4_buffer();
  const std::size_t len = std::min<std::size_t>({f.mss, l4.size() - kDataOffset, f.data_in_flight()});
  if (len == 0) return;
  // With SO_PEEK_OFF a peek starts at the offset, where the next new byte
  // is: moved to the head for this one and put back after (without that,
  // the guest got new bytes under the sequence number of the lost ones).
  set_peek_offset(f, 0);
  const ssize_t n = ::recv(f.sock.get(), l4.data() + kDataOffset, len, MSG_PEEK | MSG_DONTWAIT);
  set_peek_offset(f, f.data_in_flight());
  if (n > 0) emit(f, TcpFlag::Ack | TcpFlag::Psh, f.snd_una, static_cast<std::size_t>(n));
}

void TcpTranslator::State::set_peek_offset(Flow& f, std::size_t offset) {
  if (!f.peek_off || !f.sock) return;
  int off = static_cast<int>(offset);
  setsockopt(f.sock.get(), SOL_SOCKET, SO_PEEK_OFF, &off, sizeof off);
}

void TcpTranslator::State::on_timer(Flow& f) {
  if (f.dead) return;
  switch (f.state) {
    case TcpState::Connecting:
      io.counters().tcp_refused++;
      send_rst(f.key.remote, f.key.remote_port, f.key.guest, f.key.guest_port, 0, f.rcv_nxt, true);
      destroy(f);
      return;
    case TcpState::SynSent:
      if (++f.retries >= kInboundSynTries) {
        guest_reset(f);
        return;
      }
      emit(f, TcpFlag::Syn, f.iss, 0, true);
      f.timer.arm_in(kInboundSynRetry << f.retries);
      return;
    case TcpState::SynRcvd:
      if (++f.retries > kMaxRetries) {
        close_with_rst(f);
        return;
      }
      emit(f, TcpFlag::Syn | TcpFlag::Ack, f.iss, 0, true);
      f.rto = std::min(f.rto * 2, kMaxRto);
      arm_rto(f);
      return;
    case TcpState::Established:
      if (f.outstanding() > 0) {
        if (++f.retries > kMaxRetries) {
          close_with_rst(f);
          return;
        }
        f.rto = std::min(f.rto * 2, kMaxRto);
        rewind(f);
        f.dupacks = 0;
        f.in_recovery = false;
        push_to_guest(f);
        if (!f.dead) arm_rto(f);
        return;
      }
      if (f.snd_wnd == 0 && !f.fin_sent) {
        // A guest that keeps its window shut is given kMaxProbes probes in
        // all; one that stops answering them (it vanished) is dropped once
        // it has been silent as long as unanswered retransmissions take.
        if (++f.retries > kMaxProbes || monotonic_now() - f.last_heard > kSilentGuestLimit) {
          close_with_rst(f);
          return;
        }
        // An already-acknowledged sequence number: the guest answers with an
        // ACK carrying its current window.
        emit(f, TcpFlag::Ack, f.snd_una - 1, 0);
        f.rto = std::min(f.rto * 2, kMaxRto);
        arm_rto(f);
        return;
      }
      push_to_guest(f);  // the guest's port queue was full (kQueueFullRetry)
      return;
    case TcpState::TimeWait:
      destroy(f);
      return;
  }
}

// ---------------------------------------------------------------- inbound

void TcpTranslator::State::open_inbound(UniqueFd conn, const SockAddr& client, const IpAddr& guest,
                                        std::uint16_t guest_port) {
  Entry e(*this);
  const FlowKey key{guest, guest_port, guest_visible_address(client, guest, io.config()), client.port()};
  if (auto it = flows.find(key); it != flows.end()) {
    // The host reuses a client port quickly; a flow of the same ports that
    // only lingers in TIME_WAIT gives way, as it does to a guest's new SYN.
    if (it->second->state != TcpState::TimeWait) {
      flow_error_log.warn("nat tcp: port forward clash for {}:{}", key.remote.to_string(), key.remote_port);
      return;
    }
    destroy(*it->second);
  }
  const GuestId owner = table.guest_of(guest);
  if (!table.admit(owner, FlowKind::Tcp)) return;
  const int fl = fcntl(conn.get(), F_GETFL);
  if (fl < 0 || fcntl(conn.get(), F_SETFL, fl | O_NONBLOCK) < 0) return;
  set_nodelay(conn.get());
  Flow* f = create(key, owner, std::move(conn), TcpState::SynSent);
  f->inbound = true;
  f->peek_off = enable_peek_off(f->sock.get());
  f->iss = iss_pool.next();
  f->snd_una = f->iss;
  f->snd_nxt = f->snd_max = f->iss + 1;
  f->rcv_wscale = kOurWindowScale;
  f->sack_ok = true;  // offered; the guest's SYN-ACK decides
  f->mss = max_mss(guest);
  f->events = EPOLLIN | EPOLLRDHUP | EPOLLET;
  io.loop().add(f->sock.get(), f->events, [f](std::uint32_t ev) {
    Entry en(*f->owner);
    f->owner->on_socket(*f, ev);
  });
  compute_window(*f);
  emit(*f, TcpFlag::Syn, f->iss, 0, true);
  f->timer.arm_in(kInboundSynRetry);
}

// ---------------------------------------------------------------- public

TcpTranslator::TcpTranslator(GuestIo& io) : state_(std::make_unique<State>(io)) {}

TcpTranslator::~TcpTranslator() {
  state_->flows.clear();
  state_->dead.clear();
}

void TcpTranslator::on_segment(const wire::IpAddr& src, const wire::IpAddr& dst, wire::Bytes l4,
                               const SockAddr& target) {
  state_->on_segment(src, dst, l4, target);
}

void TcpTranslator::open_inbound(UniqueFd conn, const SockAddr& client, const wire::IpAddr& guest,
                                 std::uint16_t guest_port) {
  state_->open_inbound(std::move(conn), client, guest, guest_port);
}

nlohmann::json TcpTranslator::status() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [key, f] : state_->flows) {
    out.push_back({{"guest", key.guest.to_string() + ":" + std::to_string(key.guest_port)},
                   {"remote", key.remote.to_string() + ":" + std::to_string(key.remote_port)},
                   {"state", state_name(f->state)},
                   {"inbound", f->inbound},
                   {"in_bytes", f->in_bytes},
                   {"out_bytes", f->out_bytes},
                   {"unacked", f->outstanding()}});
  }
  return out;
}

void TcpTranslator::reset_all() {
  std::vector<State::Flow*> all;
  all.reserve(state_->flows.size());
  for (auto& [key, flow] : state_->flows) all.push_back(flow.get());
  for (State::Flow* f : all) state_->close_with_rst(*f);
}

}  // namespace vnet::nat
