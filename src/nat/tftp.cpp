// Read-only TFTP server at the gateway address (like QEMU's tftp= option),
// mostly for PXE boot.
//
// Theory of operation: a guest's RRQ to gateway:69 opens a file below
// config().tftp_dir and starts a transfer with its own gateway-side port
// (its "transfer ID", from 50000 up); there are no host sockets, the
// packets are answered in place. The transfer sends one packet (an OACK if
// the guest asked for options we accept, else DATA block 1), then waits for
// the matching ACK before sending the next block: lock-step, as RFC 1350
// says. Duplicate ACKs are ignored (never answered with a resend, which
// would start the "Sorcerer's Apprentice" packet doubling); a retransmit
// timer (1 s, or the negotiated timeout) resends the last packet up to 5
// times, then the transfer is dropped. A block shorter than blksize
// (possibly empty) ends the file; block numbers wrap from 65535 to 0, so
// files of any size work with clients that also roll over.
//
// Options: blksize (8..65464, capped so a DATA packet fits the network MTU
// without fragments: mtu - 32), tsize (the file size is returned) and
// timeout (1..5 s; RFC 2349 lets the server only accept or ignore the
// client's value, so a larger one is left out of the OACK and the default
// 1 s applies: with 5 retries a silent guest frees its slot within 36 s
// instead of the 25 min timeout=255 would give); unknown options are ignored
// (RFC 2347).
// Mode: "octet" and "netascii" both send the file's bytes unchanged (no
// CR/LF conversion: boot files are binary, and clients asking netascii for
// text files accept LF endings in practice); other modes get error 4.
//
// Safety: WRQ gets error 2 (read-only). File names are relative to the
// directory (leading '/' are stripped, as tftpd-hpa -s does); a ".."
// component, or anything resolving outside the directory (symlinks
// included), gets error 2. Files are opened with openat2(RESOLVE_BENEATH)
// from a directory fd opened once; on kernels before 5.6 the opened file's
// real path is checked instead. Only regular files are served, opened
// non-blocking so a FIFO cannot stall the engine. At most 64 transfers run
// at once (more are refused with error 0 and counted in tftp_refused), and
// at most 4 per guest port (more: error 0, tftp_guest_limit), so one guest
// cannot hold every slot.
#include "nat/tftp.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <unordered_map>

#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#define VNET_HAVE_OPENAT2 1
#endif

#include "core/error.hpp"
#include "core/log.hpp"
#include "privsep/helper.hpp"
#include "wire/tftp.hpp"

namespace vnet::nat {

using namespace vnet::wire;

namespace {

constexpr std::uint16_t kTftpPort = 69;
constexpr std::uint16_t kFirstTransferPort = 50000;
constexpr std::uint16_t kTransferPortSpan = 4096;
constexpr Nanos kDefaultTimeout = 1 * kSeconds;
constexpr int kMaxTries = 5;
constexpr std::size_t kUdpHeaderLen = 8;
// IPv4 (20) + UDP (8) + TFTP (4) headers around a DATA block.
constexpr std::uint32_t kDataOverhead = 32;

bool parse_uint(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

// True when the name has a ".." component (after '/' splitting).
bool has_dotdot(std::string_view name) {
  while (!name.empty()) {
    const std::size_t slash = name.find('/');
    if (name.substr(0, slash) == "..") return true;
    if (slash == std::string_view::npos) break;
    name.remove_prefix(slash + 1);
  }
  return false;
}

std::string real_path_of_fd(int fd) {
  char buf[PATH_MAX];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<std::size_t>(n));
}

}  // namespace

struct TftpServer::State {
  struct Transfer {
    Transfer(EventLoop& loop, std::function<void()> on_timeout) : timer(loop, std::move(on_timeout)) {}
    Ipv4Addr guest;
    PortId from_port = 0;  // the switch port of the guest
    std::uint16_t guest_port = 0;
    std::uint16_t port = 0;
    UniqueFd file;
    std::uint64_t size = 0;
    std::uint16_t blksize = TftpPacket::kDefaultBlockSize;
    Nanos timeout = kDefaultTimeout;
    // Options to acknowledge in the OACK (0 / false: not requested).
    std::uint16_t oack_blksize = 0;
    std::uint8_t oack_timeout = 0;
    bool oack_tsize = false;
    // Blocks sent so far (0: only the OACK); the wire block number is its
    // low 16 bits.
    std::uint64_t blocks_sent = 0;
    std::size_t last_len = 0;
    bool final_sent = false;
    int tries = 0;
    Timer timer;
  };

  GuestIo& io;
  UniqueFd dir;
  std::string dir_real;  // for the pre-openat2 containment check
  std::unordered_map<std::uint16_t, std::unique_ptr<Transfer>> transfers;
  std::uint16_t next_port = kFirstTransferPort;

  explicit State(GuestIo& g) : io(g) {
    const std::string& path = io.config().tftp_dir;
    if (path.empty()) return;
    dir.reset(::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir && (errno == EACCES || errno == EPERM) && privsep::broker()) {
      // An engine that dropped root: the helper opens a root in root's
      // directories (privsep/helper.hpp); files are still read as the
      // engine's user, so they must be readable by it.
      try {
        dir = privsep::broker()->open_dir(path);
      } catch (const UserError& e) {
        log::warn("tftp: {}; TFTP disabled", e.what());
        return;
      }
    }
    if (!dir) {
      log::warn("tftp: cannot open directory {}: {}; TFTP disabled", path, std::strerror(errno));
      return;
    }
    dir_real = real_path_of_fd(dir.get());
  }

  bool enabled() const { return dir.valid(); }

  MutBytes payload_buffer() { return io.l4_buffer().subspan(kUdpHeaderLen); }

  void send_error(std::uint16_t from_port, Ipv4Addr guest, std::uint16_t guest_port, TftpErrorCode code,
                  std::string_view msg) {
    MutBytes buf = payload_buffer();
    const std::size_t n = tftp_emit_error(buf, code, msg);
    if (n) io.send_udp(io.config().gateway, from_port, guest, guest_port, buf.first(n));
  }

  std::uint16_t max_blksize() {
    const std::uint32_t mtu_cap = io.config().mtu > kDataOverhead ? io.config().mtu - kDataOverhead : 0;
    const std::size_t buf_cap = payload_buffer().size() - TftpPacket::kHeaderLen;
    std::size_t cap = std::min<std::size_t>({mtu_cap, buf_cap, TftpPacket::kMaxBlockSize});
    return static_cast<std::uint16_t>(std::max<std::size_t>(cap, TftpPacket::kMinBlockSize));
  }

  std::optional<std::uint16_t> allocate_port() {
    for (std::uint32_t i = 0; i < kTransferPortSpan; ++i) {
      const std::uint16_t p = next_port;
      next_port = p + 1 >= kFirstTransferPort + kTransferPortSpan ? kFirstTransferPort : p + 1;
      if (!transfers.contains(p)) return p;
    }
    return std::nullopt;
  }

  // Opens name below the directory; on failure errno says why (EXDEV for
  // an escape attempt).
  int open_beneath(const std::string& name) {
    constexpr int kFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
#ifdef VNET_HAVE_OPENAT2
    open_how how{};
    how.flags = kFlags;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    const int fd = static_cast<int>(::syscall(SYS_openat2, dir.get(), name.c_str(), &how, sizeof how));
    if (fd >= 0 || errno != ENOSYS) return fd;
#endif
    const int old_fd = ::openat(dir.get(), name.c_str(), kFlags);
    if (old_fd < 0) return -1;
    const std::string real = real_path_of_fd(old_fd);
    if (dir_real.empty() || real.size() <= dir_real.size() || real.compare(0, dir_real.size(), dir_real) != 0 ||
        (dir_real != "/" && real[dir_real.size()] != '/')) {
      ::close(old_fd);
      errno = EXDEV;
      return -1;
    }
    return old_fd;
  }

  std::size_t transfers_of(PortId port) const {
    std::size_t n = 0;
    for (const auto& [p, t] : transfers) n += t->from_port == port;
    return n;
  }

  void on_request(PortId from_port, Ipv4Addr guest, std::uint16_t guest_port, const TftpPacket& pkt) {
    auto req = TftpRequest::parse(pkt);
    if (!req) {
      io.counters().drop_malformed++;
      return;
    }
    if (req->opcode == TftpOpcode::Wrq) {
      io.counters().tftp_refused++;
      send_error(kTftpPort, guest, guest_port, TftpErrorCode::AccessViolation, "read-only server");
      return;
    }
    if (!tftp_iequals(req->mode, "octet") && !tftp_iequals(req->mode, "netascii")) {
      io.counters().tftp_refused++;
      send_error(kTftpPort, guest, guest_port, TftpErrorCode::IllegalOperation, "unsupported mode");
      return;
    }
    // A repeated RRQ (our first answer was lost): the transfer's timer resends.
    for (const auto& [port, t] : transfers)
      if (t->guest == guest && t->guest_port == guest_port) return;
    if (transfers.size() >= kMaxTransfers) {
      io.counters().tftp_refused++;
      send_error(kTftpPort, guest, guest_port, TftpErrorCode::NotDefined, "too many transfers");
      return;
    }
    if (transfers_of(from_port) >= kMaxTransfersPerGuest) {
      io.counters().tftp_refused++;
      io.counters().tftp_guest_limit++;
      send_error(kTftpPort, guest, guest_port, TftpErrorCode::NotDefined, "too many transfers from this guest");
      return;
    }
    std::string_view name = req->filename;
    while (!name.empty() && name.front() == '/') name.remove_prefix(1);
    if (has_dotdot(name)) {
      io.counters().tftp_refused++;
      send_error(kTftpPort, guest, guest_port, TftpErrorCode::AccessViolation, "access violation");
      return;
    }
    UniqueFd file(name.empty() ? -1 : open_beneath(std::string(name)));
    if (name.empty()) errno = ENOENT;
    struct stat st {};
    if (file && (::fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode))) {
      file.reset();
      errno = EACCES;
    }
    if (!file) {
      io.counters().tftp_refused++;
      const bool missing = errno == ENOENT || errno == ENOTDIR;
      send_error(kTftpPort, guest, guest_port, missing ? TftpErrorCode::FileNotFound : TftpErrorCode::AccessViolation,
                 missing ? "file not found" : "access violation");
      return;
    }
    auto port = allocate_port();
    if (!port) {
      io.counters().tftp_refused++;
      send_error(kTftpPort, guest, guest_port, TftpErrorCode::NotDefined, "too many transfers");
      return;
    }
    const std::uint16_t p = *port;
    auto t = std::make_unique<Transfer>(io.loop(), [this, p] { on_timeout(p); });
    t->guest = guest;
    t->from_port = from_port;
    t->guest_port = guest_port;
    t->port = p;
    t->file = std::move(file);
    t->size = static_cast<std::uint64_t>(st.st_size);
    negotiate(*req, *t);
    if (!wants_oack(*t)) t->blocks_sent = 1;
    Transfer& ref = *t;
    transfers.emplace(p, std::move(t));
    io.counters().tftp_transfers++;
    log::debug("tftp: {}:{} reads {} ({} bytes, blksize {})", guest.to_string(), guest_port, name, ref.size,
               ref.blksize);
    send_current(ref);
  }

  void negotiate(const TftpRequest& req, Transfer& t) {
    std::uint64_t v = 0;
    if (auto* o = req.find("blksize"); o && parse_uint(o->value, v) && v >= TftpPacket::kMinBlockSize) {
      t.blksize = static_cast<std::uint16_t>(std::min<std::uint64_t>(v, max_blksize()));
      t.oack_blksize = t.blksize;
    } else {
      t.blksize = std::min(TftpPacket::kDefaultBlockSize, max_blksize());
    }
    if (auto* o = req.find("timeout"); o && parse_uint(o->value, v) && v >= 1 && v <= kMaxTimeoutSeconds) {
      t.timeout = static_cast<Nanos>(v) * kSeconds;
      t.oack_timeout = static_cast<std::uint8_t>(v);
    }
    if (auto* o = req.find("tsize"); o && parse_uint(o->value, v)) t.oack_tsize = true;
  }

  bool wants_oack(const Transfer& t) const { return t.oack_blksize || t.oack_timeout || t.oack_tsize; }

  // (Re)sends the packet the transfer waits an ACK for, and arms the timer.
  void send_current(Transfer& t) {
    const bool ok = t.blocks_sent == 0 ? send_oack(t) : send_data(t);
    if (!ok) {
      finish(t.port);
      return;
    }
    t.timer.arm_in(t.timeout);
  }

  bool send_oack(Transfer& t) {
    char blk[8], tmo[4], tsz[24];
    TftpOption opts[3];
    std::size_t n = 0;
    auto fmt = [](char* b, std::size_t cap, std::uint64_t v) {
      auto r = std::to_chars(b, b + cap, v);
      return std::string_view(b, static_cast<std::size_t>(r.ptr - b));
    };
    if (t.oack_blksize) opts[n++] = {"blksize", fmt(blk, sizeof blk, t.oack_blksize)};
    if (t.oack_timeout) opts[n++] = {"timeout", fmt(tmo, sizeof tmo, t.oack_timeout)};
    if (t.oack_tsize) opts[n++] = {"tsize", fmt(tsz, sizeof tsz, t.size)};
    MutBytes buf = payload_buffer();
    const std::size_t len = tftp_emit_oack(buf, opts, n);
    if (len) io.send_udp(io.config().gateway, t.port, t.guest, t.guest_port, buf.first(len));
    return len != 0;
  }

  // Sends block blocks_sent, read straight into the outgoing frame.
  bool send_data(Transfer& t) {
    MutBytes buf = payload_buffer();
    const std::uint64_t offset = (t.blocks_sent - 1) * t.blksize;
    tftp_emit_data_header(buf, static_cast<std::uint16_t>(t.blocks_sent));
    std::size_t got = 0;
    while (got < t.blksize) {
      const ssize_t r = ::pread(t.file.get(), buf.data() + TftpPacket::kHeaderLen + got, t.blksize - got,
                                static_cast<off_t>(offset + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        send_error(t.port, t.guest, t.guest_port, TftpErrorCode::NotDefined, "read error");
        return false;
      }
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    t.last_len = got;
    t.final_sent = got < t.blksize;
    io.send_udp(io.config().gateway, t.port, t.guest, t.guest_port, buf.first(TftpPacket::kHeaderLen + got));
    return true;
  }

  void on_timeout(std::uint16_t port) {
    auto it = transfers.find(port);
    if (it == transfers.end()) return;
    Transfer& t = *it->second;
    if (++t.tries > kMaxTries) {
      log::debug("tftp: transfer to {}:{} timed out", t.guest.to_string(), t.guest_port);
      finish(port);
      return;
    }
    send_current(t);
  }

  void on_transfer_packet(Transfer& t, const TftpPacket& pkt) {
    switch (pkt.opcode()) {
      case TftpOpcode::Ack: {
        // Only the ACK of the packet in flight moves on; older ones are
        // duplicates and answering them would double the traffic.
        if (pkt.block() != static_cast<std::uint16_t>(t.blocks_sent)) return;
        if (t.final_sent) {
          finish(t.port);
          return;
        }
        t.blocks_sent++;
        t.tries = 0;
        send_current(t);
        return;
      }
      case TftpOpcode::Error:
        log::debug("tftp: guest aborted transfer: {}", pkt.error_message());
        finish(t.port);
        return;
      default:
        send_error(t.port, t.guest, t.guest_port, TftpErrorCode::IllegalOperation, "illegal operation");
        finish(t.port);
        return;
    }
  }

  void finish(std::uint16_t port) { transfers.erase(port); }
};

TftpServer::TftpServer(GuestIo& io) : state_(std::make_unique<State>(io)) {}
TftpServer::~TftpServer() = default;

bool TftpServer::on_datagram(wire::Ipv4Addr guest, std::uint16_t guest_port, std::uint16_t gateway_port,
                             wire::Bytes payload, PortId port) {
  State& s = *state_;
  if (!s.enabled()) return false;
  State::Transfer* t = nullptr;
  if (gateway_port != kTftpPort) {
    auto it = s.transfers.find(gateway_port);
    if (it == s.transfers.end()) return false;
    t = it->second.get();
  }
  auto pkt = TftpPacket::parse(payload);
  if (!pkt) {
    s.io.counters().drop_malformed++;
    return true;
  }
  if (!t) {
    const auto op = pkt->opcode();
    if (op == TftpOpcode::Rrq || op == TftpOpcode::Wrq)
      s.on_request(port, guest, guest_port, *pkt);
    else
      s.io.counters().drop_malformed++;
    return true;
  }
  if (t->guest != guest || t->guest_port != guest_port) {
    // RFC 1350: a packet from a wrong TID is answered, the transfer goes on.
    s.send_error(gateway_port, guest, guest_port, TftpErrorCode::UnknownTransferId, "unknown transfer ID");
    return true;
  }
  s.on_transfer_packet(*t, *pkt);
  return true;
}

}  // namespace vnet::nat
