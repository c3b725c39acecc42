#include "core/event_loop.hpp"

#include <sched.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include <algorithm>
#include <csignal>

#include "core/error.hpp"
#include "core/shrink.hpp"

namespace vnet {

namespace {
// A sched_yield with nobody else runnable is back within a few
// microseconds; longer means another task ran in between.
constexpr Nanos kYieldWasContended = 15 * kMicros;
}  // namespace

Timer::Timer(EventLoop& loop, std::function<void()> on_expiry)
    : loop_(loop), slot_(loop.timer_create(this, std::move(on_expiry))) {}
Timer::~Timer() { loop_.timer_destroy(slot_); }
void Timer::arm_at(Nanos deadline) { loop_.timer_arm(slot_, deadline); }
void Timer::cancel() { loop_.timer_cancel(slot_); }
bool Timer::armed() const { return loop_.timer_slots_[slot_].armed; }

EventLoop::EventLoop()
    : epoll_(epoll_create1(EPOLL_CLOEXEC)),
      timerfd_(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) {
  if (!epoll_ || !timerfd_) throw UserError(errno_text("cannot create the event loop"));
  add(timerfd_.get(), EPOLLIN, [this](std::uint32_t) {
    std::uint64_t expirations;
    [[maybe_unused]] auto n = ::read(timerfd_.get(), &expirations, sizeof expirations);
    timerfd_deadline_ = 0;
    fire_due_timers();
  });
}

void EventLoop::add(int fd, std::uint32_t events, FdHandler handler) {
  if (!try_add(fd, events, std::move(handler))) throw UserError(errno_text("epoll_ctl add"));
}

bool EventLoop::try_add(int fd, std::uint32_t events, FdHandler handler) {
  if (fd < 0) throw UserError("internal: negative fd registered");
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    if (errno == EPERM) return false;
    throw UserError(errno_text("epoll_ctl add"));
  }
  if (static_cast<std::size_t>(fd) >= handlers_.size()) handlers_.resize(fd + 1);
  handlers_[fd] = std::move(handler);
  return true;
}

void EventLoop::modify(int fd, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::remove(int fd) {
  if (fd < 0) return;
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  if (static_cast<std::size_t>(fd) < handlers_.size()) {
    handlers_[fd] = nullptr;
    while (!handlers_.empty() && !handlers_.back()) handlers_.pop_back();
    shrink_if_sparse(handlers_);
  }
}

std::size_t EventLoop::table_bytes() const {
  return handlers_.capacity() * sizeof(FdHandler) + timer_slots_.capacity() * sizeof(TimerSlot) +
         free_timer_slots_.capacity() * sizeof(std::uint32_t) + timer_heap_.capacity() * sizeof(HeapEntry);
}

void EventLoop::handle_termination(std::function<void(int)> on_signal) {
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signalfd_.reset(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signalfd_) throw UserError(errno_text("signalfd"));
  on_signal_ = std::move(on_signal);
  add(signalfd_.get(), EPOLLIN, [this](std::uint32_t) {
    signalfd_siginfo info{};
    while (::read(signalfd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info))
      if (on_signal_) on_signal_(static_cast<int>(info.ssi_signo));
  });
}

void EventLoop::run() {
  running_ = true;
  AdaptivePoll poll(busy_poll_);
  Nanos poll_until = 0, quiet_until = 0;
  while (running_) {
    // One clock reading serves both: whether the poll window is still open,
    // and (when it is not) when the sleep began.
    const Nanos turn_start = busy_poll_ > 0 ? monotonic_now() : 0;
    const bool polling = poll_until != 0 && turn_start < poll_until;
    const Nanos slept_from = polling ? 0 : turn_start;
    const int handled = run_once(polling ? 0 : -1);
    if (handled > 0 && busy_poll_ > 0) {
      if (!polling) poll.woke_after(woke_at_ - slept_from);
      const Nanos now = monotonic_now();
      if (bulk_turn_ == turn_) quiet_until = now + kBulkQuiet;
      poll_until = now < quiet_until || poll.window() == 0 ? 0 : now + poll.window();
    } else if (polling) {
      // A poll that found nothing gives the CPU to whoever else is runnable
      // on it (often the very peer whose answer we wait for), and is back
      // at once if nobody is. Back late, someone else wanted this CPU: the
      // engine stops polling and sleeps, so that polling never takes CPU
      // time that a busy guest or peer would use.
      const Nanos yielded = monotonic_now();
      sched_yield();
      if (monotonic_now() - yielded > kYieldWasContended) poll_until = 0;
    }
  }
}

int EventLoop::run_once(int timeout_ms) {
  epoll_event events[64];
  // Work posted before run() (or by a stop()ped run) must not wait for an fd.
  int n = epoll_wait(epoll_.get(), events, 64, posted_.empty() ? timeout_ms : 0);
  if (n < 0) {
    if (errno == EINTR) return 0;
    throw UserError(errno_text("epoll_wait"));
  }
  if (busy_poll_ > 0 && timeout_ms != 0) {
    woke_at_ = monotonic_now();
    frames_since_sleep_ = 0;
  }
  ++turn_;
  frames_this_turn_ = 0;
  for (int i = 0; i < n; ++i) {
    int fd = events[i].data.fd;
    // A copy, because the handler may remove its own registration. Handlers
    // capture one pointer, so the copy stays in std::function's inline buffer.
    if (static_cast<std::size_t>(fd) < handlers_.size() && handlers_[fd]) {
      FdHandler h = handlers_[fd];
      h(events[i].events);
    }
  }
  run_posted();
  return n;
}

void EventLoop::run_posted() {
  // Swap rather than move so both vectors keep their capacity: posting is on
  // the forwarding path (deferred flushes) and must not allocate.
  while (!posted_.empty()) {
    running_posted_.swap(posted_);
    for (auto& p : running_posted_)
      if (!p.guarded || !p.owner.expired()) p.task();
    running_posted_.clear();
  }
}

std::uint32_t EventLoop::timer_create(Timer* owner, std::function<void()> cb) {
  std::uint32_t slot;
  if (!free_timer_slots_.empty()) {
    slot = free_timer_slots_.back();
    free_timer_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(timer_slots_.size());
    timer_slots_.emplace_back();
  }
  auto& s = timer_slots_[slot];
  s.callback = std::move(cb);
  s.owner = owner;
  s.in_use = true;
  s.armed = false;
  ++timers_in_use_;
  return slot;
}

void EventLoop::timer_destroy(std::uint32_t slot) {
  auto& s = timer_slots_[slot];
  s.generation = ++arms_;
  if (s.armed) disarmed();
  s.armed = false;
  s.in_use = false;
  s.callback = nullptr;
  s.owner = nullptr;
  --timers_in_use_;
  free_timer_slots_.push_back(slot);
  constexpr std::size_t kCompactAbove = 64;
  if (timer_slots_.size() > kCompactAbove && timers_in_use_ * 4 < timer_slots_.size()) compact_timers();
}

// After a burst of flows has closed, the few timers left may sit anywhere in
// the table: they move down into the free slots (their Timer objects learn
// the new slot, an armed one is queued again under it) and the table shrinks
// to them. Runs once three quarters of the table are free, so its cost is
// spread over the timers destroyed since the last time.
void EventLoop::compact_timers() {
  std::size_t low = 0, high = timer_slots_.size();
  for (;;) {
    while (low < high && timer_slots_[low].in_use) ++low;
    while (high > low && !timer_slots_[high - 1].in_use) --high;
    if (low + 1 >= high) break;
    TimerSlot& to = timer_slots_[low];
    TimerSlot& from = timer_slots_[high - 1];
    to = std::move(from);
    from = TimerSlot{};
    to.owner->slot_ = static_cast<std::uint32_t>(low);
    if (to.armed) {
      // The entry queued under the old slot goes stale (that slot is gone).
      to.generation = ++arms_;
      timer_heap_.push_back({to.deadline, to.generation, static_cast<std::uint32_t>(low)});
      std::push_heap(timer_heap_.begin(), timer_heap_.end(), std::greater<>());
    }
  }
  timer_slots_.resize(timers_in_use_);
  free_timer_slots_.clear();
  shrink_if_sparse(timer_slots_);
  shrink_if_sparse(free_timer_slots_);
  drop_stale_heap_entries();
}

void EventLoop::timer_arm(std::uint32_t slot, Nanos deadline) {
  auto& s = timer_slots_[slot];
  if (s.armed && s.deadline == deadline) return;
  if (!s.armed) ++armed_;
  s.generation = ++arms_;
  s.armed = true;
  s.deadline = deadline;
  timer_heap_.push_back({deadline, s.generation, slot});
  std::push_heap(timer_heap_.begin(), timer_heap_.end(), std::greater<>());
  if (timerfd_deadline_ == 0 || deadline < timerfd_deadline_) rearm_timerfd();
}

void EventLoop::timer_cancel(std::uint32_t slot) {
  auto& s = timer_slots_[slot];
  s.generation = ++arms_;
  if (s.armed) disarmed();
  s.armed = false;
}

void EventLoop::disarmed() {
  --armed_;
  // Cancelled deadlines normally leave the heap when they reach its top;
  // when most of it is cancelled (a burst of flows closed, their deadlines
  // far off), it is rebuilt from the live ones instead.
  constexpr std::size_t kCompactAbove = 64;
  if (timer_heap_.size() > kCompactAbove && timer_heap_.size() >= 4 * armed_) drop_stale_heap_entries();
}

void EventLoop::drop_stale_heap_entries() {
  std::erase_if(timer_heap_, [this](const HeapEntry& e) { return !heap_entry_live(e); });
  std::make_heap(timer_heap_.begin(), timer_heap_.end(), std::greater<>());
  shrink_if_sparse(timer_heap_);
}

bool EventLoop::heap_entry_live(const HeapEntry& e) const {
  // The slot may be gone since (compact_timers).
  if (e.slot >= timer_slots_.size()) return false;
  const auto& s = timer_slots_[e.slot];
  return s.armed && s.generation == e.generation;
}

void EventLoop::pop_heap_entry() {
  std::pop_heap(timer_heap_.begin(), timer_heap_.end(), std::greater<>());
  timer_heap_.pop_back();
  shrink_if_sparse(timer_heap_);
}

void EventLoop::rearm_timerfd() {
  // Drop cancelled entries so the timerfd never wakes for nothing.
  while (!timer_heap_.empty() && !heap_entry_live(timer_heap_.front())) pop_heap_entry();
  itimerspec spec{};
  if (!timer_heap_.empty()) {
    Nanos d = std::max<Nanos>(timer_heap_.front().deadline, 1);
    spec.it_value.tv_sec = d / kSeconds;
    spec.it_value.tv_nsec = d % kSeconds;
    timerfd_deadline_ = d;
  } else {
    timerfd_deadline_ = 0;
  }
  timerfd_settime(timerfd_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
}

void EventLoop::fire_due_timers() {
  const Nanos now = monotonic_now();
  while (!timer_heap_.empty() && timer_heap_.front().deadline <= now) {
    const HeapEntry e = timer_heap_.front();
    pop_heap_entry();
    if (!heap_entry_live(e)) continue;
    auto& s = timer_slots_[e.slot];
    s.armed = false;
    --armed_;
    // The callback may destroy its own Timer (and so reuse the slot): call a copy.
    auto cb = s.callback;
    cb();
  }
  rearm_timerfd();
}

}  // namespace vnet
