#include "ports/vhost_user.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "fabric/network.hpp"
#include "fabric/offload.hpp"
#include "ports/stream.hpp"

namespace vnet {
namespace {

using wire::VhostUserRequest;

// virtio-net feature bits (virtio 1.x, 5.1.3) and the transport's.
constexpr std::uint64_t bit(unsigned n) { return std::uint64_t{1} << n; }
constexpr std::uint64_t kNetCsum = bit(0), kNetGuestCsum = bit(1), kNetGuestTso4 = bit(7), kNetGuestTso6 = bit(8),
                        kNetHostTso4 = bit(11), kNetHostTso6 = bit(12), kNetMrgRxbuf = bit(15), kNetStatus = bit(16), kVersion1 = bit(32);
// vhost-user's own: protocol features (none of them is used, but QEMU's
// start-up path expects the negotiation), with rings then enabled by
// SET_VRING_ENABLE rather than by their kick.
constexpr std::uint64_t kProtocolFeatures = bit(30);
constexpr std::uint64_t kOffered = kNetCsum | kNetGuestCsum | kNetGuestTso4 | kNetGuestTso6 | kNetHostTso4 |
                                   kNetHostTso6 | kNetMrgRxbuf | kNetStatus | kVersion1 | kProtocolFeatures;
constexpr std::size_t kMaxFds = 8;
// TX chains handled per kick before the loop serves others.
constexpr int kTxBudget = 256;

void drain_eventfd(int fd) {
  std::uint64_t count;
  while (::read(fd, &count, sizeof count) == sizeof count) {
  }
}

}  // namespace

VhostUserPort::VhostUserPort(EventLoop& loop, Network& net, PortId id, std::string path, bool server)
    : Port(loop, net, id),
      path_(std::move(path)),
      server_(server),
      retry_timer_(loop, [this] { connect_to_front_end(); }),
      pending_(kQueueBytes),
      tx_buffer_(new std::uint8_t[kTxBufferSize]) {
  if (path_.size() >= sizeof(sockaddr_un::sun_path)) throw UserError("vhost-user: path too long: " + path_);
  if (server_) listen();
  else connect_to_front_end();
}

VhostUserPort::~VhostUserPort() {
  drop_connection("");
  if (listen_fd_) loop_.remove(listen_fd_.get());
  if (!unlink_path_.empty()) ::unlink(unlink_path_.c_str());
}

std::string VhostUserPort::state() const {
  if (!conn_) return server_ ? "waiting for QEMU" : "connecting";
  return queues_[kRx].started && queues_[kTx].started ? "running" : "negotiating";
}

bool VhostUserPort::accepts_offload() const {
  const std::uint64_t needed = kNetGuestCsum | kNetGuestTso4 | kNetGuestTso6;
  return conn_ && (features_ & needed) == needed;
}

void VhostUserPort::listen() {
  unlink_path_ = open_stream_listener(listen_fd_, SockAddr::unix_path(path_));
  loop_.add(listen_fd_.get(), EPOLLIN, [this](std::uint32_t) { accept_front_end(); });
}

// server=off: QEMU listens (`-chardev socket,server=on,wait=off`); vnet
// connects, and again with backoff whenever the connection is gone.
void VhostUserPort::connect_to_front_end() {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const SockAddr addr = SockAddr::unix_path(path_);
  const bool connected = fd && (::connect(fd.get(), addr.get(), addr.length) == 0 ||
                                (errno == EACCES && connected_by_helper(fd, addr)));
  if (connected) {
    backoff_ = 0;
    attach_connection(std::move(fd));
    return;
  }
  backoff_ = std::clamp<Nanos>(backoff_ * 2, 100 * kMillis, 5 * kSeconds);
  retry_timer_.arm_in(backoff_);
}

void VhostUserPort::accept_front_end() {
  UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd) return;
  if (conn_) {
    log_.warn("{}: port {} vhost-user: refused a second front end on {} (one is attached)", net_.name(), id(), path_);
    return;
  }
  attach_connection(std::move(fd));
}

void VhostUserPort::attach_connection(UniqueFd fd) {
  int flags = ::fcntl(fd.get(), F_GETFL);
  ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
  conn_ = std::move(fd);
  in_.clear();
  loop_.add(conn_.get(), EPOLLIN, [this](std::uint32_t) { on_control_readable(); });
  log::info("{}: port {} vhost-user front end attached on {}", net_.name(), id(), path_);
}

void VhostUserPort::drop_connection(const std::string& why) {
  if (!conn_) return;
  for (std::uint32_t i = 0; i < 2; ++i) stop_queue(i);
  for (auto& q : queues_) q = Queue{};
  loop_.remove(conn_.get());
  conn_.reset();
  memory_.clear();
  pending_.clear();
  in_.clear();
  in_fds_.clear();
  features_ = 0;
  header_len_ = 10;
  if (why.empty()) return;
  log::info("{}: port {} vhost-user front end detached: {}", net_.name(), id(), why);
  if (!server_) retry_timer_.arm_in(100 * kMillis);
}

// Reads what the front end sent, one message at a time: never past the end
// of the current message, so the fds a read returns (they come with the
// first byte of the message they belong to) are that message's.
void VhostUserPort::on_control_readable() {
  while (conn_) {
    std::size_t want = wire::kVhostUserHeaderSize - std::min(in_.size(), wire::kVhostUserHeaderSize);
    std::optional<wire::VhostUserHeader> header;
    if (want == 0) {
      wire::VhostUserError error{};
      header = wire::parse_vhost_user_header(in_, &error);
      if (!header) {
        counters_.drop_malformed++;
        return drop_connection(std::string("bad message: ") + wire::to_string(error));
      }
      want = wire::kVhostUserHeaderSize + header->size - in_.size();
    }
    if (want > 0) {
      std::uint8_t buf[wire::kVhostUserHeaderSize + wire::kVhostUserMaxPayload];
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
      iovec iov{buf, want};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(conn_.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
          in_fds_.emplace_back(fd);
        }
      }
      if (n <= 0) return drop_connection(n == 0 ? "the front end closed the connection" : errno_text("read"));
      if ((msg.msg_flags & MSG_CTRUNC) || in_fds_.size() > kMaxFds) {
        counters_.drop_malformed++;
        return drop_connection("too many file descriptors with one message");
      }
      in_.insert(in_.end(), buf, buf + n);
      continue;  // parse the header, or see whether the payload is complete
    }
    handle_message(*header, wire::Bytes(in_).subspan(wire::kVhostUserHeaderSize, header->size));
    if (!conn_) return;
    in_.clear();
    in_fds_.clear();  // fds the request did not take are closed
  }
}

void VhostUserPort::reply(const std::vector<std::uint8_t>& message) {
  // Replies are small and the front end waits for them: a short write
  // means it is not reading, which the protocol does not allow.
  if (::send(conn_.get(), message.data(), message.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(message.size()))
    drop_connection(errno_text("reply"));
}

VhostUserPort::Queue* VhostUserPort::queue(std::uint32_t index) { return index < 2 ? &queues_[index] : nullptr; }

void VhostUserPort::handle_message(const wire::VhostUserHeader& header, wire::Bytes payload) {
  wire::VhostUserError error = wire::VhostUserError::None;
  auto fail = [&](const std::string& why) {
    counters_.drop_malformed++;
    drop_connection("request " + std::to_string(header.request) + ": " + why);
  };
  auto payload_error = [&] { fail(wire::to_string(error)); };
  const auto request = static_cast<VhostUserRequest>(header.request);
  log::debug("{}: port {} vhost-user: request {} flags {:#x}, {} payload bytes, {} fds", net_.name(), id(),
             header.request, header.flags, payload.size(), in_fds_.size());
  switch (request) {
    case VhostUserRequest::GetFeatures:
      return reply(wire::emit_u64_reply(header.request, kOffered));
    case VhostUserRequest::SetFeatures: {
      const auto v = wire::parse_u64_payload(payload, &error);
      if (!v) return payload_error();
      features_ = *v & kOffered;
      header_len_ = features_ & (kNetMrgRxbuf | kVersion1) ? 12 : 10;
      return;
    }
    case VhostUserRequest::GetProtocolFeatures:
      return reply(wire::emit_u64_reply(header.request, 0));
    case VhostUserRequest::GetQueueNum:
      return reply(wire::emit_u64_reply(header.request, 1));
    case VhostUserRequest::SetMemTable:
      return set_memory(payload);
    case VhostUserRequest::SetVringNum: {
      const auto s = wire::parse_vring_state(payload, &error);
      if (!s) return payload_error();
      Queue* q = queue(s->index);
      if (!q || !q->ring.set_size(s->num)) return fail("bad queue index or ring size");
      return;
    }
    case VhostUserRequest::SetVringAddr: {
      const auto a = wire::parse_vring_addr(payload, &error);
      if (!a) return payload_error();
      Queue* q = queue(a->index);
      if (!q) return fail("bad queue index");
      q->ring.set_addresses(*a);
      if (!q->ring.map(memory_)) return fail("ring addresses outside the guest's memory");
      return;
    }
    case VhostUserRequest::SetVringBase: {
      const auto s = wire::parse_vring_state(payload, &error);
      if (!s) return payload_error();
      Queue* q = queue(s->index);
      if (!q) return fail("bad queue index");
      q->ring.set_next_avail(static_cast<std::uint16_t>(s->num));
      return;
    }
    case VhostUserRequest::GetVringBase: {
      const auto s = wire::parse_vring_state(payload, &error);
      if (!s) return payload_error();
      Queue* q = queue(s->index);
      if (!q) return fail("bad queue index");
      stop_queue(s->index);
      return reply(wire::emit_vring_state_reply(header.request, {s->index, q->ring.next_avail()}));
    }
    case VhostUserRequest::SetVringKick:
    case VhostUserRequest::SetVringCall:
    case VhostUserRequest::SetVringErr: {
      const auto v = wire::parse_u64_payload(payload, &error);
      if (!v) return payload_error();
      const auto index = static_cast<std::uint32_t>(*v & 0xff);
      Queue* q = queue(index);
      if (!q) return fail("bad queue index");
      const bool no_fd = *v & wire::kVhostUserNoFd;
      if (no_fd != in_fds_.empty()) return fail("file descriptor missing or unexpected");
      if (request == VhostUserRequest::SetVringErr) return;
      if (request == VhostUserRequest::SetVringCall) {
        q->call = no_fd ? UniqueFd() : std::move(in_fds_.front());
        return;
      }
      if (no_fd) return fail("polled rings (no kick fd) are not supported");
      return start_queue(index, std::move(in_fds_.front()));
    }
    case VhostUserRequest::SetOwner:
    case VhostUserRequest::SetProtocolFeatures:
    case VhostUserRequest::SetVringEnable:
    case VhostUserRequest::SendRarp:
    case VhostUserRequest::NetSetMtu:
      return;
    case VhostUserRequest::ResetOwner:
      for (std::uint32_t i = 0; i < 2; ++i) stop_queue(i);
      return;
    default:
      log_.info("{}: port {} vhost-user: request {} ignored", net_.name(), id(), header.request);
      // A request that wants an answer we cannot give would leave the front
      // end waiting: better to end the connection.
      if (header.flags & wire::kVhostUserFlagNeedReply) fail("unsupported request wants a reply");
      return;
  }
}

void VhostUserPort::set_memory(wire::Bytes payload) {
  wire::VhostUserError error{};
  const auto regions = wire::parse_memory_table(payload, &error);
  if (!regions) {
    counters_.drop_malformed++;
    return drop_connection(std::string("memory table: ") + wire::to_string(error));
  }
  try {
    memory_.map(*regions, in_fds_);
  } catch (const UserError& e) {
    counters_.drop_malformed++;
    return drop_connection(e.what());
  }
  // Rings set up before a new table are translated again through it.
  for (auto& q : queues_)
    if (q.ring.mapped() && !q.ring.map(memory_)) {
      counters_.drop_malformed++;
      return drop_connection("a ring lies outside the new memory table");
    }
}

void VhostUserPort::start_queue(std::uint32_t index, UniqueFd kick) {
  Queue& q = queues_[index];
  stop_queue(index);
  if (!q.ring.mapped()) {
    counters_.drop_malformed++;
    return drop_connection("kick before the ring's size and addresses");
  }
  q.kick = std::move(kick);
  q.started = true;
  if (index == kTx) {
    loop_.add(q.kick.get(), EPOLLIN, [this](std::uint32_t) { on_tx_kick(); });
    drain_tx();  // the guest may have queued frames before we listened
  } else {
    loop_.add(q.kick.get(), EPOLLIN, [this](std::uint32_t) {
      drain_eventfd(queues_[kRx].kick.get());
      flush_rx();
    });
  }
  if (queues_[kRx].started && queues_[kTx].started)
    log::info("{}: port {} vhost-user rings running ({} and {} entries, features {:#x})", net_.name(), id(),
              queues_[kRx].ring.size(), queues_[kTx].ring.size(), features_);
}

void VhostUserPort::stop_queue(std::uint32_t index) {
  Queue& q = queues_[index];
  if (q.kick) loop_.remove(q.kick.get());
  q.kick.reset();
  q.started = false;
}

void VhostUserPort::on_tx_kick() {
  drain_eventfd(queues_[kTx].kick.get());
  drain_tx();
}

// Guest -> network: each available TX chain is one frame behind a
// virtio_net_hdr, gathered from its segments into one buffer.
void VhostUserPort::drain_tx() {
  Queue& q = queues_[kTx];
  DescriptorChain chain;
  int handled = 0;
  for (; q.started && handled < kTxBudget; ++handled) {
    const auto popped = q.ring.pop(memory_, chain, false);
    if (popped == Virtqueue::Pop::Empty) break;
    if (popped == Virtqueue::Pop::Broken) {
      counters_.drop_malformed++;
      return drop_connection("broken TX descriptor chain");
    }
    std::size_t len = 0;
    bool fits = chain.bytes <= kTxBufferSize;
    for (std::size_t i = 0; fits && i < chain.count; ++i) {
      std::memcpy(tx_buffer_.get() + len, chain.segments[i].data, chain.segments[i].len);
      len += chain.segments[i].len;
    }
    q.ring.push_used(chain.head, 0);
    if (!fits) {
      counters_.drop_oversize++;
      continue;
    }
    if (len < header_len_) {
      counters_.drop_runt++;
      continue;
    }
    const Offload offload = Offload::parse({tx_buffer_.get(), Offload::kHeaderLen});
    const wire::Bytes frame(tx_buffer_.get() + header_len_, len - header_len_);
    from_peer(frame, offload.pending() ? &offload : nullptr);
    if (!conn_) return;  // the network dropped the port meanwhile
  }
  q.ring.publish();
  if (handled > 0) signal_later(q);
  if (handled == kTxBudget && !tx_posted_) {
    tx_posted_ = true;
    loop_.post(net_.life(), [&net = net_, port = id()] {
      if (auto* p = static_cast<VhostUserPort*>(net.find_port(port))) {
        p->tx_posted_ = false;
        p->drain_tx();
      }
    });
  }
}

void VhostUserPort::send_to_peer(wire::Bytes frame) {
  std::uint8_t header[12] = {};
  enqueue_rx({header, header_len_}, frame);
}

void VhostUserPort::send_offloaded(wire::Bytes frame, const Offload& offload) {
  std::uint8_t header[12] = {};
  offload.emit({header, Offload::kHeaderLen});
  enqueue_rx({header, header_len_}, frame);
}

void VhostUserPort::enqueue_rx(wire::Bytes header, wire::Bytes frame) {
  if (!queues_[kRx].started) {
    counters_.drop_down++;  // no guest attached: as an unplugged cable
    return;
  }
  if (!pending_.push(header, frame)) {
    counters_.drop_overflow++;
    return;
  }
  counters_.tx_frames++;
  counters_.tx_bytes += frame.size();
  if (pending_.frames() == 1) flush_rx();
}

// Network -> guest, oldest first, for as long as the guest has buffers.
void VhostUserPort::flush_rx() {
  Queue& q = queues_[kRx];
  bool wrote = false;
  while (!pending_.empty() && q.started) {
    if (!write_rx(pending_.front().bytes)) break;
    pending_.pop();
    wrote = true;
  }
  if (wrote) {
    q.ring.publish();
    signal_later(q);
  }
}

// Copies one [header][frame] record into as many RX chains as it needs
// (one without mergeable buffers); false, using none, when the guest has
// too few buffers posted.
bool VhostUserPort::write_rx(wire::Bytes record) {
  Queue& q = queues_[kRx];
  const bool mergeable = features_ & kNetMrgRxbuf;
  std::uint16_t used_chains = 0;
  std::size_t offset = 0;
  std::uint8_t* num_buffers_field = nullptr;
  DescriptorChain chain;
  struct Used {
    std::uint16_t head;
    std::uint32_t len;
  };
  std::array<Used, 64> used{};
  while (offset < record.size()) {
    if (used_chains == used.size()) {
      counters_.drop_oversize++;
      q.ring.unpop(used_chains);
      return true;  // cannot ever fit: drop it rather than block the queue
    }
    const auto popped = q.ring.pop(memory_, chain, true);
    if (popped == Virtqueue::Pop::Broken) {
      counters_.drop_malformed++;
      drop_connection("broken RX descriptor chain");
      return false;
    }
    if (popped == Virtqueue::Pop::Empty) {
      q.ring.unpop(used_chains);
      return false;
    }
    std::uint32_t written = 0;
    for (std::size_t i = 0; i < chain.count && offset < record.size(); ++i) {
      const std::size_t n = std::min<std::size_t>(chain.segments[i].len, record.size() - offset);
      if (offset == 0 && n >= 12) num_buffers_field = chain.segments[i].data + 10;
      std::memcpy(chain.segments[i].data, record.data() + offset, n);
      offset += n;
      written += static_cast<std::uint32_t>(n);
    }
    used[used_chains++] = {chain.head, written};
    if (!mergeable && offset < record.size()) {
      // One buffer must hold the frame: this one cannot, so it is dropped.
      counters_.drop_oversize++;
      q.ring.push_used(chain.head, 0);
      return true;
    }
  }
  // VERSION_1 headers always carry num_buffers (1 without mergeable buffers).
  if (header_len_ == 12 && num_buffers_field) std::memcpy(num_buffers_field, &used_chains, 2);
  for (std::uint16_t i = 0; i < used_chains; ++i) q.ring.push_used(used[i].head, used[i].len);
  return true;
}

// Interrupts are coalesced: one eventfd write per queue per loop round.
void VhostUserPort::signal_later(Queue& q) {
  q.signal_due = true;
  if (signal_posted_) return;
  signal_posted_ = true;
  loop_.post(net_.life(), [&net = net_, port = id()] {
    if (auto* p = static_cast<VhostUserPort*>(net.find_port(port))) p->signal_due();
  });
}

void VhostUserPort::signal_due() {
  signal_posted_ = false;
  for (auto& q : queues_) {
    if (!q.signal_due) continue;
    q.signal_due = false;
    if (!q.call || !q.ring.wants_interrupt()) continue;
    const std::uint64_t one = 1;
    if (::write(q.call.get(), &one, sizeof one) < 0) log_.warn("{}: port {} vhost-user: interrupt: {}", net_.name(), id(), std::strerror(errno));
  }
}

}  // namespace vnet
