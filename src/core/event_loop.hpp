// The engine's single epoll loop: fd readiness, timers and signals.
//
// Theory of operation: everything vnet does happens in callbacks from run().
// fds are registered with a handler that lives until remove(); timers are
// slots in a table (so a Timer object can be destroyed while its deadline is
// still queued: the stale heap entry is recognised by its generation and
// skipped) and one timerfd armed with the earliest deadline gives nanosecond
// precision for traffic shaping without busy polling. Signals arrive through
// a signalfd so they run as ordinary callbacks.
#pragma once

#include <sys/epoll.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/clock.hpp"
#include "core/fd.hpp"

namespace vnet {

class EventLoop;

// How long the loop keeps polling after a turn that handled events, adapted
// much as QEMU's iothreads adapt theirs: while events keep coming soon after
// the loop went to sleep, the window grows (doubling, up to the configured
// most). While they come only after long sleeps (kSparse times the most),
// the traffic is sparse and polling would only burn CPU: the window halves
// (to nothing below kMinWindow). In between it stays: a request/response
// exchange has one short wait (the peer's answer, which polling catches)
// and one longer (the guest's next request), and must keep its window.
class AdaptivePoll {
 public:
  static constexpr Nanos kMinWindow = 4 * kMicros;
  static constexpr int kSparse = 4;
  explicit AdaptivePoll(Nanos most) : most_(most), window_(most) {}
  Nanos window() const { return window_; }
  // The loop slept this long before the events of its last turn came.
  void woke_after(Nanos slept) {
    if (slept < most_) {
      window_ = std::min(most_, window_ > 0 ? window_ * 2 : kMinWindow);
    } else if (slept >= kSparse * most_) {
      window_ /= 2;
      if (window_ < kMinWindow) window_ = 0;
    }
  }

 private:
  Nanos most_;
  Nanos window_;
};

// Marks the lifetime of an object that posts deferred work (a network, a
// translator): work posted with its token is skipped once the object is gone,
// so a task queued just before `vnet net del` never runs on freed memory.
class LifeToken {
 public:
  LifeToken() : alive_(std::make_shared<char>(0)) {}
  LifeToken(const LifeToken&) = delete;
  LifeToken& operator=(const LifeToken&) = delete;
  std::weak_ptr<const void> watch() const { return alive_; }
  // Ends the lifetime early, e.g. first thing in a destructor whose members
  // might still post while they are torn down.
  void expire() { alive_.reset(); }

 private:
  std::shared_ptr<char> alive_;
};

// A re-armable one-shot timer. Destroying it cancels it.
class Timer {
 public:
  Timer(EventLoop& loop, std::function<void()> on_expiry);
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer();

  void arm_at(Nanos deadline);
  void arm_in(Nanos delay) { arm_at(monotonic_now() + delay); }
  void cancel();
  bool armed() const;

 private:
  friend class EventLoop;
  EventLoop& loop_;
  std::uint32_t slot_;  // moved by EventLoop::compact_timers
};

class EventLoop {
 public:
  using FdHandler = std::function<void(std::uint32_t events)>;

  EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Registers fd for events (EPOLLIN/EPOLLOUT/...); the handler is called on readiness.
  void add(int fd, std::uint32_t events, FdHandler handler);
  // As add(), but returns false for fds epoll cannot watch (regular files,
  // /dev/null): those are always ready, so callers just do their I/O.
  bool try_add(int fd, std::uint32_t events, FdHandler handler);
  void modify(int fd, std::uint32_t events);
  void remove(int fd);

  // SIGINT and SIGTERM (and SIGHUP) call on_signal; SIGPIPE is ignored.
  void handle_termination(std::function<void(int signo)> on_signal);

  // Runs until stop(). Exceptions from handlers propagate.
  void run();
  // One turn: waits up to timeout_ms (-1: no limit) for events, handles
  // them, then the posted work; returns how many fds had events. For tests
  // that drive the loop step by step.
  int run_once(int timeout_ms);
  // After a turn that handled events, keep polling (without sleeping) for
  // up to this long before blocking again: the next packet of a
  // request/response exchange then finds the loop awake instead of paying
  // a wake-up. The window adapts (AdaptivePoll); 0: off.
  void set_busy_poll(Nanos most) { busy_poll_ = most; }
  // A frame of `bytes` was forwarded in this turn. Bulk data (a large
  // frame, many frames in a turn, or many since the loop last slept) stops
  // polling for kBulkQuiet: a bulk transfer or a flood keeps the loop busy
  // anyway, and a polling engine would look busy to the scheduler, which
  // then crowds the guests' and peers' work onto the other CPUs.
  static constexpr std::size_t kBulkFrameBytes = 1024;
  static constexpr std::uint32_t kBulkFramesPerTurn = 8;
  static constexpr std::uint32_t kBulkFramesAwake = 64;
  static constexpr Nanos kBulkQuiet = 2 * kMillis;
  void note_frame(std::size_t bytes) {
    ++frames_since_sleep_;
    if (bytes >= kBulkFrameBytes || ++frames_this_turn_ >= kBulkFramesPerTurn ||
        frames_since_sleep_ >= kBulkFramesAwake)
      bulk_turn_ = turn_;
  }
  // Counts the turns: an event of this turn was reported before any of its
  // handlers ran, so a handler may tell that an edge it was woken for is
  // one it already consumed earlier in the same turn.
  std::uint64_t turn() const { return turn_; }
  void stop() { running_ = false; }
  // Heap held by the fd and timer tables (their capacity): these grow with
  // the flows and must shrink back after them.
  std::size_t table_bytes() const;

  // Defers work to after the current batch of events (e.g. freeing a port
  // from inside its own handler). A task that refers to an object which may
  // be destroyed in the same batch must be posted with that object's token.
  void post(std::function<void()> task) { posted_.push_back({std::move(task), {}, false}); }
  void post(const LifeToken& owner, std::function<void()> task) {
    posted_.push_back({std::move(task), owner.watch(), true});
  }

 private:
  friend class Timer;
  struct TimerSlot {
    std::function<void()> callback;
    Timer* owner = nullptr;
    Nanos deadline = 0;
    std::uint64_t generation = 0;  // from arms_, so never reused by a later slot
    bool armed = false;
    bool in_use = false;
  };
  struct HeapEntry {
    Nanos deadline;
    std::uint64_t generation;
    std::uint32_t slot;
    bool operator>(const HeapEntry& o) const { return deadline > o.deadline; }
  };

  std::uint32_t timer_create(Timer* owner, std::function<void()> cb);
  void timer_destroy(std::uint32_t slot);
  void timer_arm(std::uint32_t slot, Nanos deadline);
  void timer_cancel(std::uint32_t slot);
  bool heap_entry_live(const HeapEntry& e) const;
  void pop_heap_entry();
  void disarmed();
  void drop_stale_heap_entries();
  void compact_timers();
  void rearm_timerfd();
  void fire_due_timers();
  void run_posted();

  UniqueFd epoll_;
  UniqueFd timerfd_;
  UniqueFd signalfd_;
  // These three grow with the number of flows (an fd and a timer each) and
  // shrink again after a burst of them has closed.
  std::vector<FdHandler> handlers_;  // indexed by fd
  std::vector<TimerSlot> timer_slots_;
  std::vector<std::uint32_t> free_timer_slots_;
  std::vector<HeapEntry> timer_heap_;            // a min-heap on deadline (std::push_heap, greater)
  std::uint64_t arms_ = 0;
  std::size_t armed_ = 0;  // live entries of timer_heap_; the rest are cancelled ones
  std::size_t timers_in_use_ = 0;
  Nanos timerfd_deadline_ = 0;
  struct Posted {
    std::function<void()> task;
    std::weak_ptr<const void> owner;
    bool guarded;  // an owner was given: run only while it lives
  };
  std::vector<Posted> posted_;
  std::vector<Posted> running_posted_;
  std::function<void(int)> on_signal_;
  bool running_ = false;
  Nanos busy_poll_ = 0;
  std::uint64_t bulk_turn_ = 0;
  std::uint32_t frames_this_turn_ = 0, frames_since_sleep_ = 0;
  Nanos woke_at_ = 0;  // when the last blocking wait returned (busy polling on)
  std::uint64_t turn_ = 0;
};

}  // namespace vnet
