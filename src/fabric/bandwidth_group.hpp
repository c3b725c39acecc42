// Bandwidth groups, as VirtualBox's `bandwidthctl`: several ports share one
// rate limit. Each member port's impairment stage (fabric/impairment) keeps
// its frames in its own queue; when a frame is due there, the stage asks the
// group's lane for its direction for a turn on the shared rate.
//
// The lane shares the rate fairly among the members that have frames due
// (start-time fair queueing by bytes): the next turn goes to the member that
// has been served the fewest bytes, and a member that comes back from idle
// starts level with the others instead of cashing in the time it was idle.
// A first-come order would let one deep queue hold the rate: two TCP senders
// in one group settled at 3 and 16 Mbit/s of 20 that way.
#pragma once

#include <cstdint>
#include <cstddef>
#include <string>
#include <vector>

#include "core/event_loop.hpp"
#include "fabric/token_bucket.hpp"

namespace vnet {

// What a lane needs from a member stage.
class BandwidthGroupMember {
 public:
  struct Sent {
    std::size_t bytes = 0;    // 0: nothing was due after all
    bool more_due = false;    // another frame is due now
  };
  // The size of the member's due head frame (0: none is due).
  virtual std::size_t due_frame_bytes() const = 0;
  // Sends the member's due head frame; `held` says the shared rate kept it
  // waiting (the stage counts it as shaped).
  virtual Sent send_due_frame(bool held) = 0;

 protected:
  ~BandwidthGroupMember() = default;
};

class BandwidthGroup;

// One direction's scheduler: a token bucket as a virtual finish time, and
// the members waiting for it.
class BandwidthLane {
 public:
  BandwidthLane(EventLoop& loop, const BandwidthGroup& group);

  // `member` has a frame due; it is sent now or when its turn comes.
  void ready(BandwidthGroupMember& member);
  // `member` goes away (its port or settings changed); its frames with it.
  void leave(BandwidthGroupMember& member);
  std::size_t waiting() const;

 private:
  struct Waiter {
    BandwidthGroupMember* member;  // null once it left during a dispatch
    std::uint64_t served;          // bytes, on the lane's scale
    bool held = false;             // its frame waited for the rate
  };
  void dispatch();
  std::size_t next_turn() const;

  const BandwidthGroup& group_;
  Timer timer_;
  TokenBucket bucket_;
  std::uint64_t virtual_served_ = 0;  // the served count of the last turn
  std::vector<Waiter> waiters_;
  bool dispatching_ = false;
};

class BandwidthGroup {
 public:
  BandwidthGroup(EventLoop& loop, std::string group_name);
  BandwidthGroup(const BandwidthGroup&) = delete;
  BandwidthGroup& operator=(const BandwidthGroup&) = delete;

  // Direction::In is lane 0, Direction::Out lane 1.
  BandwidthLane& lane(int direction) { return lanes_[direction == 0 ? 0 : 1]; }

  std::string name;
  std::uint64_t rate_bps = 0;     // > 0
  std::uint64_t burst_bytes = 0;  // 0: one MTU-sized frame

 private:
  BandwidthLane lanes_[2];
};

}  // namespace vnet
