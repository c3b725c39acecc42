#include "fabric/bandwidth_group.hpp"

#include <algorithm>
#include <utility>

namespace vnet {

BandwidthGroup::BandwidthGroup(EventLoop& loop, std::string group_name)
    : name(std::move(group_name)), lanes_{BandwidthLane(loop, *this), BandwidthLane(loop, *this)} {}

BandwidthLane::BandwidthLane(EventLoop& loop, const BandwidthGroup& group)
    : group_(group), timer_(loop, [this] { dispatch(); }) {}

std::size_t BandwidthLane::waiting() const {
  return static_cast<std::size_t>(
      std::count_if(waiters_.begin(), waiters_.end(), [](const Waiter& w) { return w.member != nullptr; }));
}

void BandwidthLane::ready(BandwidthGroupMember& member) {
  const bool known = std::any_of(waiters_.begin(), waiters_.end(), [&](const Waiter& w) { return w.member == &member; });
  if (!known) waiters_.push_back({&member, virtual_served_});
  // A member that becomes ready while a turn is being sent (its frame came
  // from that send) is picked up by the dispatch under way.
  if (!dispatching_) dispatch();
}

void BandwidthLane::leave(BandwidthGroupMember& member) {
  for (auto& w : waiters_)
    if (w.member == &member) w.member = nullptr;
  if (!dispatching_) std::erase_if(waiters_, [](const Waiter& w) { return w.member == nullptr; });
  if (waiters_.empty()) timer_.cancel();
}

std::size_t BandwidthLane::next_turn() const {
  std::size_t best = waiters_.size();
  for (std::size_t i = 0; i < waiters_.size(); ++i)
    if (waiters_[i].member && (best == waiters_.size() || waiters_[i].served < waiters_[best].served)) best = i;
  return best;
}

void BandwidthLane::dispatch() {
  dispatching_ = true;
  const Nanos now = monotonic_now();
  for (;;) {
    const std::size_t turn = next_turn();
    if (turn == waiters_.size()) break;
    const std::size_t bytes = waiters_[turn].member->due_frame_bytes();
    const Nanos free_at = bucket_.departure(group_.rate_bps, group_.burst_bytes, bytes, now);
    if (bytes && free_at > now) {
      for (auto& w : waiters_) w.held = true;
      timer_.arm_at(free_at);
      break;
    }
    // Index, not reference: the send may add waiters (never removes them).
    const BandwidthGroupMember::Sent sent = waiters_[turn].member->send_due_frame(waiters_[turn].held);
    waiters_[turn].held = false;
    bucket_.charge(group_.rate_bps, group_.burst_bytes, sent.bytes, now);
    virtual_served_ = waiters_[turn].served;
    waiters_[turn].served += sent.bytes;
    if (!sent.more_due) waiters_[turn].member = nullptr;
  }
  std::erase_if(waiters_, [](const Waiter& w) { return w.member == nullptr; });
  dispatching_ = false;
}

}  // namespace vnet
