// Datagrams in batches of up to kSize, for recvmmsg and sendmmsg: one
// system call moves a batch where one per datagram would cost the most on
// the datagram transports (QEMU's dgram and socket ports, VDE, VXLAN) and
// the NAT's UDP flows.
// Receive buffers are allocated once, at construction.
#pragma once

#include <sys/socket.h>

#include <memory>
#include <vector>

#include "wire/bytes.hpp"

namespace vnet {

class DatagramBatch {
 public:
  static constexpr int kSize = 32;

  explicit DatagramBatch(std::size_t max_datagram);

  // Reads up to kSize datagrams from fd without blocking; returns how many
  // (0 when none is waiting or on error).
  int receive(int fd);
  wire::Bytes datagram(int i) const {
    return {buffers_.get() + static_cast<std::size_t>(i) * max_, msgs_[static_cast<std::size_t>(i)].msg_len};
  }
  // Longer than max_datagram: its tail was cut off.
  bool truncated(int i) const { return msgs_[static_cast<std::size_t>(i)].msg_hdr.msg_flags & MSG_TRUNC; }
  const sockaddr_storage& source(int i) const { return sources_[static_cast<std::size_t>(i)]; }

  // Sending: add() datagrams (each names its destination, or none on a
  // connected socket) while it returns true, then send() them.
  void start_sending() { out_ = 0; }
  bool add(wire::Bytes datagram, const sockaddr* to = nullptr, socklen_t to_len = 0);
  int pending() const { return out_; }
  // sendmmsg of what was added: how many went out, or -1 with errno.
  int send(int fd);

 private:
  void point(int i, std::uint8_t* data, std::size_t len, void* name, socklen_t name_len);

  std::size_t max_;
  std::unique_ptr<std::uint8_t[]> buffers_;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  std::vector<sockaddr_storage> sources_;
  int out_ = 0;
};

}  // namespace vnet
