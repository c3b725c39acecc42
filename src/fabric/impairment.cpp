#include "fabric/impairment.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

namespace vnet {
namespace {

// Splits "25ms" into 25 and "ms"; the number may have a fraction.
std::optional<std::pair<double, std::string_view>> split_number(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + i, value);
  if (ec != std::errc{} || ptr != text.data() + i || !std::isfinite(value) || value < 0) return std::nullopt;
  return std::make_pair(value, text.substr(i));
}

// A frame held back for reordering is let go after this long even if no
// other frame comes to overtake it.
constexpr Nanos kReorderHoldLimit = 10 * kMillis;

}  // namespace

std::optional<std::uint64_t> parse_rate(std::string_view text) {
  auto n = split_number(text);
  if (!n) return std::nullopt;
  auto [v, unit] = *n;
  double mult;
  if (unit == "" || unit == "bit" || unit == "bps") mult = 1;
  else if (unit == "kbit") mult = 1e3;
  else if (unit == "mbit") mult = 1e6;
  else if (unit == "gbit") mult = 1e9;
  else if (unit == "kbps") mult = 8e3;
  else if (unit == "mbps") mult = 8e6;
  else if (unit == "gbps") mult = 8e9;
  else return std::nullopt;
  double bps = v * mult;
  if (bps > 1e13) return std::nullopt;
  return static_cast<std::uint64_t>(bps);
}

std::optional<Nanos> parse_duration(std::string_view text) {
  auto n = split_number(text);
  if (!n) return std::nullopt;
  auto [v, unit] = *n;
  double mult;
  if (unit == "ns") mult = 1;
  else if (unit == "us") mult = kMicros;
  else if (unit == "ms" || (unit == "" && v == 0)) mult = kMillis;
  else if (unit == "s") mult = kSeconds;
  else return std::nullopt;
  double ns = v * mult;
  if (ns > 3600.0 * kSeconds) return std::nullopt;
  return static_cast<Nanos>(ns);
}

std::optional<double> parse_probability(std::string_view text) {
  bool percent = !text.empty() && text.back() == '%';
  if (percent) text.remove_suffix(1);
  auto n = split_number(text);
  if (!n || !n->second.empty()) return std::nullopt;
  double p = percent ? n->first / 100.0 : n->first;
  if (p > 1.0) return std::nullopt;
  return p;
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  auto n = split_number(text);
  if (!n) return std::nullopt;
  auto [v, unit] = *n;
  double mult;
  if (unit == "" || unit == "b") mult = 1;
  else if (unit == "k" || unit == "kb" || unit == "kib") mult = 1024;
  else if (unit == "m" || unit == "mb" || unit == "mib") mult = 1024 * 1024;
  else return std::nullopt;
  if (v * mult > 1e12) return std::nullopt;
  return static_cast<std::uint64_t>(v * mult);
}

std::string ImpairmentParams::describe() const {
  std::string out;
  auto add = [&out](const std::string& s) {
    if (!out.empty()) out += ' ';
    out += s;
  };
  if (rate_bps) add(fmt::format("rate {}bit/s", rate_bps));
  if (burst_bytes) add(fmt::format("burst {}", burst_bytes));
  if (delay) add(fmt::format("delay {}ms", delay / 1e6));
  if (jitter) add(fmt::format("jitter {}ms", jitter / 1e6));
  if (loss > 0) add(fmt::format("loss {}%", loss * 100));
  if (duplicate > 0) add(fmt::format("dup {}%", duplicate * 100));
  if (reorder > 0) add(fmt::format("reorder {}%", reorder * 100));
  return out;
}

Impairment::Impairment(EventLoop& loop, const ImpairmentParams& params, PortCounters& counters, Sink sink,
                       std::uint64_t seed, std::shared_ptr<BandwidthGroup> group, int direction)
    : loop_(loop),
      params_(params),
      counters_(counters),
      sink_(std::move(sink)),
      rng_(seed),
      queue_(params.queue_bytes),
      timer_(loop, [this] { release_due(); }),
      held_(70 * 1024),
      held_timer_(loop, [this] { release_held(); }),
      group_(std::move(group)),
      lane_(group_ ? &group_->lane(direction) : nullptr) {}

Impairment::~Impairment() {
  if (lane_) lane_->leave(*this);
}

void Impairment::process(wire::Bytes frame) {
  if (chance(params_.loss)) {
    counters_.imp_lost++;
    return;
  }
  const int copies = chance(params_.duplicate) ? 2 : 1;
  if (copies == 2) counters_.imp_duplicated++;
  for (int i = 0; i < copies; ++i) {
    const bool queued_stage = this->queued_stage();
    if (chance(params_.reorder)) {
      if (queued_stage && !queue_.empty()) {
        // Jumps the queue: overtakes every frame still waiting.
        counters_.imp_reordered++;
        sink_(frame);
        continue;
      }
      if (!queued_stage && held_.empty() && held_.push(frame)) {
        counters_.imp_reordered++;
        held_timer_.arm_in(kReorderHoldLimit);
        continue;
      }
    }
    if (queued_stage) {
      enqueue(frame);
    } else {
      sink_(frame);
      release_held();
    }
  }
}

void Impairment::enqueue(wire::Bytes frame) {
  const Nanos now = monotonic_now();
  Nanos depart = now + params_.delay;
  if (params_.jitter) {
    std::uniform_int_distribution<Nanos> jitter(-params_.jitter, params_.jitter);
    depart = std::max(now, depart + jitter(rng_));
  }
  Nanos shaped = now;
  if (params_.rate_bps)
    shaped = std::max(shaped, rate_bucket_.charge(params_.rate_bps, params_.burst_bytes, frame.size(), now));
  if (shaped > now) counters_.imp_shaped++;
  depart = std::max(depart, shaped + params_.delay);
  depart = std::max(depart, last_departure_);
  if (!queue_.push(frame, depart)) {
    counters_.imp_queue_drop++;
    if (params_.rate_bps) rate_bucket_.refund(params_.rate_bps, frame.size());
    return;
  }
  last_departure_ = depart;
  if (params_.delay || params_.jitter) counters_.imp_delayed++;
  if (queue_.frames() == 1) {
    if (depart <= now) release_due();
    else timer_.arm_at(depart);
  }
}

void Impairment::release_due() {
  const Nanos now = monotonic_now();
  while (!queue_.empty()) {
    auto rec = queue_.front();
    if (rec.due > now) {
      timer_.arm_at(rec.due);
      return;
    }
    if (lane_) {
      lane_->ready(*this);  // the lane sends it, and those due after it, in turn
      return;
    }
    sink_(rec.bytes);
    queue_.pop();
  }
}

std::size_t Impairment::due_frame_bytes() const {
  return queue_.empty() || queue_.front().due > monotonic_now() ? 0 : queue_.front().bytes.size();
}

BandwidthGroupMember::Sent Impairment::send_due_frame(bool held) {
  if (queue_.empty()) return {};
  const Nanos now = monotonic_now();
  const std::size_t bytes = queue_.front().bytes.size();
  if (queue_.front().due > now) {
    timer_.arm_at(queue_.front().due);
    return {};
  }
  if (held) counters_.imp_shaped++;
  sink_(queue_.front().bytes);
  queue_.pop();
  if (queue_.empty()) return {bytes, false};
  const Nanos next = queue_.front().due;
  if (next <= now) return {bytes, true};
  timer_.arm_at(next);
  return {bytes, false};
}

void Impairment::release_held() {
  if (held_.empty()) return;
  held_timer_.cancel();
  sink_(held_.front().bytes);
  held_.pop();
}

}  // namespace vnet
