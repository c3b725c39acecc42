// Levelled logging to stderr (or the engine's log file when daemonised).
#pragma once

#include <sys/types.h>

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/clock.hpp"

namespace vnet::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void set_level(Level level);
Level level();
std::optional<Level> parse_level(std::string_view name);
void write(Level level, std::string_view message);

// Under systemd, stderr is usually a stream into the journal, and
// $JOURNAL_STREAM ("DEVICE:INODE") says which. Lines written there carry
// their level as the syslog priority prefix the journal reads ("<6>" for
// info, sd-daemon(3)) and no timestamp (the journal stamps each line).
// Returns whether it switched to that format. Call after stderr is final.
bool use_journal_format_if_stderr_is_journal();
// Whether a $JOURNAL_STREAM value names the file with this device and inode.
bool journal_stream_is(std::string_view value, dev_t device, ino_t inode);
void set_journal_format(bool on);

template <typename... Args>
void at(Level lv, fmt::format_string<Args...> f, Args&&... args) {
  if (lv < level()) return;
  write(lv, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... a) { at(Level::Debug, f, std::forward<Args>(a)...); }
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... a) { at(Level::Info, f, std::forward<Args>(a)...); }
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... a) { at(Level::Warn, f, std::forward<Args>(a)...); }
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... a) { at(Level::Error, f, std::forward<Args>(a)...); }

// A log line that guests (or other untrusted peers) can trigger at will must
// not turn into a flood: it goes through one of these, kept next to the code
// that logs it (one per kind of line). At most `burst` lines are written per
// `interval`; the others are counted, and the first line of a later interval
// is followed by "(K similar lines suppressed)".
class RateLimited {
 public:
  explicit RateLimited(std::uint32_t burst = 5, Nanos interval = 10 * kSeconds)
      : burst_(burst), interval_(interval) {}

  template <typename... Args>
  void at(Level lv, fmt::format_string<Args...> f, Args&&... args) {
    if (lv < level() || !admit(monotonic_now())) return;
    write(lv, fmt::format(f, std::forward<Args>(args)...));
    report_suppressed(lv);
  }
  template <typename... Args>
  void info(fmt::format_string<Args...> f, Args&&... a) { at(Level::Info, f, std::forward<Args>(a)...); }
  template <typename... Args>
  void warn(fmt::format_string<Args...> f, Args&&... a) { at(Level::Warn, f, std::forward<Args>(a)...); }
  template <typename... Args>
  void error(fmt::format_string<Args...> f, Args&&... a) { at(Level::Error, f, std::forward<Args>(a)...); }

  // Lines dropped so far, over the object's whole life.
  std::uint64_t suppressed_total() const { return suppressed_total_; }

  // Whether a line at `now` may be written; counts it as suppressed if not.
  bool admit(Nanos now);

 private:
  void report_suppressed(Level lv);

  std::uint32_t burst_;
  Nanos interval_;
  Nanos window_start_ = 0;
  std::uint32_t written_in_window_ = 0;
  std::uint64_t suppressed_unreported_ = 0;
  std::uint64_t suppressed_total_ = 0;
};

}  // namespace vnet::log
