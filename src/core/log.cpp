#include "core/log.hpp"

#include <atomic>
#include <cstdio>
#include <ctime>

namespace vnet::log {
namespace {
// The one process-wide setting: which messages are worth a line.
std::atomic<Level> current_level{Level::Info};

const char* name_of(Level lv) {
  switch (lv) {
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warn: return "warn";
    case Level::Error: return "error";
  }
  return "?";
}
}  // namespace

void set_level(Level lv) { current_level = lv; }
Level level() { return current_level; }

std::optional<Level> parse_level(std::string_view name) {
  if (name == "debug") return Level::Debug;
  if (name == "info") return Level::Info;
  if (name == "warn" || name == "warning") return Level::Warn;
  if (name == "error") return Level::Error;
  return std::nullopt;
}

void write(Level lv, std::string_view message) {
  std::timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  std::tm tm{};
  gmtime_r(&ts.tv_sec, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
  fmt::print(stderr, "{}.{:03d} {:5} {}\n", stamp, static_cast<int>(ts.tv_nsec / 1000000), name_of(lv),
             message);
  std::fflush(stderr);
}

bool RateLimited::admit(Nanos now) {
  if (window_start_ == 0 || now - window_start_ >= interval_) {
    window_start_ = now;
    written_in_window_ = 0;
  }
  if (written_in_window_ < burst_) {
    ++written_in_window_;
    return true;
  }
  ++suppressed_unreported_;
  ++suppressed_total_;
  return false;
}

void RateLimited::report_suppressed(Level lv) {
  if (suppressed_unreported_ == 0) return;
  write(lv, fmt::format("({} similar lines suppressed)", suppressed_unreported_));
  suppressed_unreported_ = 0;
}

}  // namespace vnet::log
