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
      group_finish_(group_ ? &group_->finish[direction == 0 ? 0 : 1] : nullptr) {}

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

namespace {

// A token bucket as a virtual finish time: the frame may leave once the
// bucket's finish time, less the burst it allows early, has come. Moves
// `finish` on by the frame's time on the wire; returns that departure time.
Nanos shape(std::uint64_t rate_bps, std::uint64_t burst_bytes, Nanos& finish, std::size_t len, Nanos now) {
  const std::uint64_t burst = burst_bytes ? burst_bytes : 1514;
  const Nanos burst_ns = static_cast<Nanos>(burst * 8.0 * kSeconds / rate_bps);
  finish = std::max(finish, now - burst_ns) + static_cast<Nanos>(len * 8.0 * kSeconds / rate_bps);
  return finish - burst_ns;
}

// Gives back a frame's slot that it never took on the wire.
void unshape(std::uint64_t rate_bps, Nanos& finish, std::size_t len) {
  finish -= static_cast<Nanos>(len * 8.0 * kSeconds / rate_bps);
}

}  // namespace

void Impairment::enqueue(wire::Bytes frame) {
  const Nanos now = monotonic_now();
  Nanos depart = now + params_.delay;
  if (params_.jitter) {
    std::uniform_int_distribution<Nanos> jitter(-params_.jitter, params_.jitter);
    depart = std::max(now, depart + jitter(rng_));
  }
  Nanos shaped = now;
  if (params_.rate_bps)
    shaped = std::max(shaped, shape(params_.rate_bps, params_.burst_bytes, virtual_finish_, frame.size(), now));
  if (group_)
    shaped = std::max(shaped, shape(group_->rate_bps, group_->burst_bytes, *group_finish_, frame.size(), now));
  if (shaped > now) counters_.imp_shaped++;
  depart = std::max(depart, shaped + params_.delay);
  depart = std::max(depart, last_departure_);
  if (!queue_.push(frame, depart)) {
    counters_.imp_queue_drop++;
    if (params_.rate_bps) unshape(params_.rate_bps, virtual_finish_, frame.size());
    if (group_) unshape(group_->rate_bps, *group_finish_, frame.size());
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
    sink_(rec.bytes);
    queue_.pop();
  }
}

void Impairment::release_held() {
  if (held_.empty()) return;
  held_timer_.cancel();
  sink_(held_.front().bytes);
  held_.pop();
}

}  // namespace vnet
