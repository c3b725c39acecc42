#include "ports/fd_port.hpp"

#include "fabric/network.hpp"

#include <sys/uio.h>

#include <cerrno>

namespace vnet {

FdPort::FdPort(EventLoop& loop, Network& net, PortId id, std::size_t queue_bytes)
    : Port(loop, net, id), out_(queue_bytes) {}

FdPort::~FdPort() { detach(); }

void FdPort::attach(UniqueFd fd) {
  detach();
  fd_ = std::move(fd);
  want_write_ = false;
  pollable_ = loop_.try_add(fd_.get(), EPOLLIN, [this](std::uint32_t ev) {
    if (ev & (EPOLLERR | EPOLLHUP)) {
      on_error();
      return;
    }
    if (ev & EPOLLOUT) on_writable();
    if ((ev & EPOLLIN) && attached()) on_readable();
  });
  // Not pollable (a regular file): always ready, so writes just happen.
}

void FdPort::detach() {
  if (!fd_.valid()) return;
  if (pollable_) loop_.remove(fd_.get());
  fd_.reset();
  out_.clear();
}

void FdPort::drop_unsendable_front(std::uint64_t& drop_counter, std::size_t prefix_bytes) {
  drop_counter++;
  counters_.tx_frames--;
  counters_.tx_bytes -= out_.front().bytes.size() - prefix_bytes;
  out_.pop();
}

void FdPort::queue_out(wire::Bytes prefix, wire::Bytes frame) {
  bool queued = attached() && out_.push(prefix, frame);
  if (!queued && attached()) {
    // Full within one loop round: a burst larger than the queue (an egress
    // delay releasing a round's worth of frames at once). Write what the
    // peer takes now rather than drop what the queue was sized to carry.
    flush();
    queued = attached() && out_.push(prefix, frame);
  }
  if (!queued) {
    counters_.drop_overflow++;
    return;
  }
  counters_.tx_frames++;
  counters_.tx_bytes += frame.size();
  if (!flush_posted_ && !want_write_) {
    flush_posted_ = true;
    // The port (or its whole network) may be gone by the time the task runs:
    // the network's token guards the network, the id lookup the port.
    loop_.post(net_.life(), [&net = net_, id = id()] {
      if (auto* p = net.find_port(id)) static_cast<FdPort*>(p)->flush();
    });
  }
}

void FdPort::flush() {
  flush_posted_ = false;
  if (!attached()) return;
  if (!out_.empty() && !write_queued()) return;
  update_interest();
}

void FdPort::update_interest() {
  bool want = !out_.empty();
  if (want == want_write_ || !attached() || !pollable_) return;
  want_write_ = want;
  loop_.modify(fd_.get(), want ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

bool write_stream_records(int fd, FrameQueue& queue, std::size_t& partial_offset) {
  constexpr int kMaxIov = 64;
  while (!queue.empty()) {
    iovec iov[kMaxIov];
    int n = 0;
    bool first = true;
    queue.for_each([&](const FrameQueue::Record& r) {
      std::size_t skip = first ? partial_offset : 0;
      first = false;
      iov[n].iov_base = const_cast<std::uint8_t*>(r.bytes.data() + skip);
      iov[n].iov_len = r.bytes.size() - skip;
      return ++n < kMaxIov;
    });
    ssize_t written = ::writev(fd, iov, n);
    if (written < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (errno == EINTR) continue;
      return false;
    }
    auto left = static_cast<std::size_t>(written);
    while (left > 0) {
      std::size_t rest = queue.front().bytes.size() - partial_offset;
      if (left < rest) {
        partial_offset += left;
        return true;  // the kernel buffer is full: wait for EPOLLOUT
      }
      left -= rest;
      partial_offset = 0;
      queue.pop();
    }
  }
  return true;
}

}  // namespace vnet
