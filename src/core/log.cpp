#include "core/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace vnet::log {
namespace {
// The one process-wide setting: which messages are worth a line.
std::atomic<Level> current_level{Level::Info};
// Process-wide like the level: where stderr leads does not change per line.
std::atomic<bool> journal_format{false};

// syslog priorities (syslog(3)): debug 7, info 6, warning 4, err 3.
int priority_of(Level lv) {
  switch (lv) {
    case Level::Debug: return 7;
    case Level::Info: return 6;
    case Level::Warn: return 4;
    case Level::Error: return 3;
  }
  return 6;
}

template <typename T>
bool parse_whole(std::string_view text, T& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

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

void set_journal_format(bool on) { journal_format = on; }

bool journal_stream_is(std::string_view value, dev_t device, ino_t inode) {
  const auto colon = value.find(':');
  if (colon == std::string_view::npos) return false;
  unsigned long long dev = 0, ino = 0;
  return parse_whole(value.substr(0, colon), dev) && parse_whole(value.substr(colon + 1), ino) && dev == device &&
         ino == inode;
}

bool use_journal_format_if_stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  struct stat st{};
  const bool on = stream && ::fstat(STDERR_FILENO, &st) == 0 && journal_stream_is(stream, st.st_dev, st.st_ino);
  set_journal_format(on);
  return on;
}

void write(Level lv, std::string_view message) {
  if (journal_format) {
    fmt::print(stderr, "<{}>{}\n", priority_of(lv), message);
    std::fflush(stderr);
    return;
  }
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
