// Levelled logging to stderr (or the engine's log file when daemonised).
#pragma once

#include <fmt/format.h>

#include <optional>
#include <string_view>

namespace vnet::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void set_level(Level level);
Level level();
std::optional<Level> parse_level(std::string_view name);
void write(Level level, std::string_view message);

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

}  // namespace vnet::log
