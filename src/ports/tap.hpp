// A Linux TAP device as a port: the kernel's own network stack (the host's,
// or a network namespace's) becomes a guest on the network. Used for bridged
// and host-only set-ups and, in tests, to plug real kernel stacks in.
//
// The device is created if missing (needs CAP_NET_ADMIN in the namespace) or
// attached if it exists and is owned by this user (`ip tuntap add ... user`),
// and brought up. With netns=NAME it is created inside /run/netns/NAME (the
// `ip netns` convention): the engine enters that namespace only for the open.
// An engine without privileges asks the privileged helper for the fd.
#pragma once

#include <sys/uio.h>

#include <memory>
#include <string>

#include "ports/fd_port.hpp"

namespace vnet {

class TapPort : public FdPort {
 public:
  TapPort(EventLoop& loop, Network& net, PortId id, std::string ifname, std::string netns);

  std::string kind() const override { return "tap"; }
  std::string peer() const override { return netns_.empty() ? ifname_ : netns_ + "/" + ifname_; }
  bool accepts_offload() const override { return true; }

 protected:
  // A device that, like a TAP with a virtio-net header, gives and takes one
  // frame per read and write behind that header (a packet socket).
  TapPort(EventLoop& loop, Network& net, PortId id, std::string ifname, std::string netns, UniqueFd device);

  void on_readable() override;
  bool write_queued() override;
  void send_to_peer(wire::Bytes frame) override;
  void send_offloaded(wire::Bytes frame, const Offload& offload) override;

 private:
  // Writes header+frame to the device at once when the frame is at least
  // kDirectWriteMin bytes and nothing waits in the queue; false when the
  // frame must be queued instead.
  bool write_now(wire::Bytes header, wire::Bytes frame);
  static constexpr std::size_t kDirectWriteMin = 4096;
  // One frame (header and frame in iov) to the device, retried on EINTR.
  // Lost: an error other than EAGAIN, counted as drop_down.
  enum class DeviceWrite { Written, Busy, Lost };
  DeviceWrite write_to_device(const iovec* iov, int count);

  std::string ifname_;
  std::string netns_;
  std::unique_ptr<std::uint8_t[]> buffer_;
  std::size_t buffer_size_;
  // Bounded so a busy TAP cannot starve other ports.
  static constexpr int kMaxFramesPerRound = 64;
  // on_readable(): the last round found one frame, so this one reads one
  // and skips the read that would find the queue empty...
  bool expect_lone_frame_ = false;
  // ...unless the TAP is ready again right in the turn after such a round.
  std::uint64_t lone_round_turn_ = 0;
};

}  // namespace vnet
