// A vhost-user network back end: QEMU's `-netdev vhost-user` hands vnet its
// guest's virtio-net rings and memory, so frames move between the guest and
// the network by copying in shared memory, without a socket write or read
// per frame. The control messages come over a unix socket (vnet listens
// with server=on, the default, or connects with server=off); the guest's
// notifications and vnet's interrupts are eventfds.
//
// One front end at a time: another that connects while one is attached is
// refused. When the front end goes away (QEMU quits or is killed), its
// memory is unmapped and the port waits for the next one, so a restarted
// QEMU reattaches without a `port add`.
//
// Negotiated: VIRTIO_F_VERSION_1, mergeable RX buffers, checksum offload
// and TSO both ways. Not offered: multiqueue, indirect descriptors, event
// index, packed rings, migration logging (the front end falls back).
//
// The front end is untrusted (another user's QEMU, or anything that can
// connect): messages are parsed strictly (wire/vhost_user.hpp), rings are
// read through bounds-checked views (ports/virtqueue.hpp), and any
// violation ends that connection only, counted in drop_malformed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/event_loop.hpp"
#include "core/fd.hpp"
#include "core/frame_queue.hpp"
#include "core/log.hpp"
#include "core/sockaddr.hpp"
#include "fabric/port.hpp"
#include "ports/virtqueue.hpp"

namespace vnet {

class VhostUserPort : public Port {
 public:
  static constexpr std::size_t kQueueBytes = 2 << 20;
  // A guest's frame: a 64 KiB TSO segment, its Ethernet header and the
  // virtio-net header.
  static constexpr std::size_t kTxBufferSize = 65536 + 64;

  VhostUserPort(EventLoop& loop, Network& net, PortId id, std::string path, bool server);
  ~VhostUserPort() override;

  std::string kind() const override { return "vhost-user"; }
  std::string peer() const override { return path_; }
  std::string state() const override;
  bool accepts_offload() const override;
  std::size_t queued_frames() const override { return pending_.frames(); }

 protected:
  void send_to_peer(wire::Bytes frame) override;
  void send_offloaded(wire::Bytes frame, const Offload& offload) override;
  std::size_t output_room() const override { return pending_.capacity() - pending_.bytes_used(); }

 private:
  struct Queue {
    Virtqueue ring;
    UniqueFd kick;
    UniqueFd call;
    bool started = false;
    bool signal_due = false;
  };
  static constexpr std::uint32_t kRx = 0, kTx = 1;

  void listen();
  void connect_to_front_end();
  void accept_front_end();
  void attach_connection(UniqueFd fd);
  void drop_connection(const std::string& why);
  void on_control_readable();
  void handle_message(const wire::VhostUserHeader& header, wire::Bytes payload);
  void reply(const std::vector<std::uint8_t>& message);
  void set_memory(wire::Bytes payload);
  void start_queue(std::uint32_t index, UniqueFd kick);
  void stop_queue(std::uint32_t index);
  Queue* queue(std::uint32_t index);

  void on_tx_kick();
  void drain_tx();
  void enqueue_rx(wire::Bytes header, wire::Bytes frame);
  void flush_rx();
  bool write_rx(wire::Bytes record);
  void signal_later(Queue& q);
  void signal_due();

  std::string path_;
  bool server_;
  UniqueFd listen_fd_;
  UniqueFd conn_;
  std::string unlink_path_;
  Timer retry_timer_;
  Nanos backoff_ = 0;

  // The control message being read, and the fds that came with it.
  std::vector<std::uint8_t> in_;
  std::vector<UniqueFd> in_fds_;

  std::uint64_t features_ = 0;
  std::size_t header_len_ = 10;  // virtio_net_hdr, 12 with VERSION_1 or mergeable buffers
  GuestMemory memory_;
  Queue queues_[2];
  FrameQueue pending_;  // frames waiting for RX buffers: [virtio_net_hdr][frame]
  std::unique_ptr<std::uint8_t[]> tx_buffer_;
  bool signal_posted_ = false;
  bool tx_posted_ = false;
  log::RateLimited log_{10, 10 * kSeconds};
};

}  // namespace vnet
