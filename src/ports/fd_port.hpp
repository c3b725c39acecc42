// Shared machinery of ports that own one fd: epoll registration, a bounded
// egress queue and flushing it once per event-loop batch (so several frames
// leave in one writev/sendmmsg instead of one syscall each).
#pragma once

#include "core/fd.hpp"
#include "core/frame_queue.hpp"
#include "fabric/port.hpp"

namespace vnet {

class FdPort : public Port {
 public:
  static constexpr std::size_t kDefaultQueueBytes = 2 << 20;

  FdPort(EventLoop& loop, Network& net, PortId id, std::size_t queue_bytes = kDefaultQueueBytes);
  ~FdPort() override;
  std::size_t queued_frames() const override { return out_.frames(); }
  std::size_t output_room() const override { return out_.capacity() - out_.bytes_used(); }

 protected:
  // Takes ownership of fd and watches it for input.
  void attach(UniqueFd fd);
  // Stops watching and closes the fd; queued output is discarded.
  void detach();
  bool attached() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }

  virtual void on_readable() = 0;
  virtual void on_writable() { flush(); }
  // Hangup or error on the fd.
  virtual void on_error() { on_readable(); }
  // Writes what it can from out_; returns false on a fatal error (the
  // subclass has then dealt with it, e.g. by closing).
  virtual bool write_queued() = 0;

  // Queues prefix+frame for the peer and schedules a flush; counts tx or drop.
  void queue_out(wire::Bytes prefix, wire::Bytes frame);
  // The record at the head of out_ can never be sent: it leaves the queue,
  // and what queue_out counted as sent counts under `drop_counter` instead.
  // `prefix_bytes` is the length of the prefix it was queued with.
  void drop_unsendable_front(std::uint64_t& drop_counter, std::size_t prefix_bytes = 0);
  void flush();

  FrameQueue out_;

 private:
  void update_interest();

  UniqueFd fd_;
  bool flush_posted_ = false;
  bool want_write_ = false;
  bool pollable_ = true;
};

// Writes queued records to a byte-stream fd with writev, resuming a record
// that was written in part. Returns false on a fatal error (errno set).
bool write_stream_records(int fd, FrameQueue& queue, std::size_t& partial_offset);

}  // namespace vnet
