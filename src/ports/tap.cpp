#include "ports/tap.hpp"

#include <linux/if.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/error.hpp"
#include "fabric/network.hpp"
#include "privsep/helper.hpp"
#include "privsep/tap_open.hpp"

namespace vnet {

namespace {

UniqueFd open_tap(const std::string& ifname, const std::string& netns) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ)
    throw UserError("tap: ifname must be 1 to " + std::to_string(IFNAMSIZ - 1) + " characters");
  // Without root's capabilities the privileged helper opens it (privsep/).
  privsep::Broker* helper = privsep::broker();
  return helper ? helper->open_tap(ifname, netns) : privsep::open_tap_device(ifname, netns);
}

}  // namespace

TapPort::TapPort(EventLoop& loop, Network& net, PortId id, std::string ifname, std::string netns)
    : TapPort(loop, net, id, ifname, netns, open_tap(ifname, netns)) {}

TapPort::TapPort(EventLoop& loop, Network& net, PortId id, std::string ifname, std::string netns, UniqueFd device)
    : FdPort(loop, net, id),
      ifname_(std::move(ifname)),
      netns_(std::move(netns)),
      // Room for the virtio-net header and a whole TSO segment; +1 so that an
      // oversize frame shows as such rather than arriving truncated.
      buffer_size_(Offload::kHeaderLen + std::max(net.max_frame(), Network::kMaxOffloadFrame) + 1) {
  buffer_.reset(new std::uint8_t[buffer_size_]);
  attach(std::move(device));
}

// A TAP gives no queue length, so a round normally reads until a read
// finds nothing. In request/response traffic each wake-up brings one frame,
// and that last read is a system call on every exchange. So after a round
// that found exactly one frame, the next round reads one and returns:
// epoll is level-triggered, and if more was waiting the TAP is reported
// again in the very next turn, which then reads until empty.
void TapPort::on_readable() {
  const std::uint64_t turn = loop_.turn();
  const bool burst_behind = lone_round_turn_ != 0 && turn == lone_round_turn_ + 1;
  const int limit = expect_lone_frame_ && !burst_behind ? 1 : kMaxFramesPerRound;
  int frames = 0;
  bool drained = false;
  while (frames < limit) {
    ssize_t n = ::read(fd(), buffer_.get(), buffer_size_);
    if (n < 0) {
      if (errno == EINTR) continue;
      drained = true;  // EAGAIN, or the device went away (EBADFD): nothing to read
      break;
    }
    ++frames;
    if (static_cast<std::size_t>(n) < Offload::kHeaderLen) {
      counters_.drop_runt++;
      continue;
    }
    const Offload offload = Offload::parse({buffer_.get(), Offload::kHeaderLen});
    from_peer({buffer_.get() + Offload::kHeaderLen, static_cast<std::size_t>(n) - Offload::kHeaderLen},
              offload.pending() ? &offload : nullptr);
    if (!attached()) return;
  }
  lone_round_turn_ = limit == 1 ? turn : 0;
  expect_lone_frame_ = frames == 1 && (drained || limit == 1);
}

void TapPort::send_to_peer(wire::Bytes frame) {
  // Every write carries a virtio-net header; all zero for a plain frame.
  static constexpr std::uint8_t kPlain[Offload::kHeaderLen] = {};
  if (!write_now(kPlain, frame)) queue_out(kPlain, frame);
}

void TapPort::send_offloaded(wire::Bytes frame, const Offload& offload) {
  std::uint8_t header[Offload::kHeaderLen];
  offload.emit(header);
  if (!write_now(header, frame)) queue_out(header, frame);
}

// A TAP takes one frame per write, so for a large frame (a TSO segment of
// up to 64 KiB) the queue only adds a copy: with nothing queued ahead it is
// written from where it lies. Small frames still wait for the round's
// flush: written after the round's reads, a burst of them reaches the
// receiving stack together and wakes its reader once, not per frame
// (64-byte frames through the switch: 105k/s queued, 95k/s written at once).
bool TapPort::write_now(wire::Bytes header, wire::Bytes frame) {
  if (frame.size() < kDirectWriteMin || !attached() || !out_.empty()) return false;
  const iovec iov[2] = {{const_cast<std::uint8_t*>(header.data()), header.size()},
                        {const_cast<std::uint8_t*>(frame.data()), frame.size()}};
  const DeviceWrite result = write_to_device(iov, 2);
  if (result == DeviceWrite::Busy) return false;
  if (result == DeviceWrite::Written) {
    counters_.tx_frames++;
    counters_.tx_bytes += frame.size();
  }
  return true;
}

bool TapPort::write_queued() {
  while (!out_.empty()) {
    auto rec = out_.front();
    const iovec iov{const_cast<std::uint8_t*>(rec.bytes.data()), rec.bytes.size()};
    if (write_to_device(&iov, 1) == DeviceWrite::Busy) return true;
    out_.pop();
  }
  return true;
}

TapPort::DeviceWrite TapPort::write_to_device(const iovec* iov, int count) {
  for (;;) {
    if (::writev(fd(), iov, count) >= 0) return DeviceWrite::Written;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return DeviceWrite::Busy;
    // EIO while the interface is down: the frame is lost, as on a real NIC.
    counters_.drop_down++;
    return DeviceWrite::Lost;
  }
}

}  // namespace vnet
