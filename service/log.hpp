// Leveled logging on fmt: one line per event, "level component message key=value…".
// debug: tracing; info: a client misbehaves; warn: degraded but serving;
// error: an operator must act. Never log payloads or tokens. Thread-safe.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace seqcast::log {

enum class level { debug = 0, info = 1, warn = 2, error = 3 };

// Sets the threshold and the format (text key=value, or one JSON object per line).
void init(std::string_view threshold, bool json);
bool enabled(level l);
void write(level l, std::string_view component, std::string_view message);

template <class... A>
void debug(std::string_view component, fmt::format_string<A...> f, A&&... a) {
  if (enabled(level::debug)) write(level::debug, component, fmt::format(f, std::forward<A>(a)...));
}
template <class... A>
void info(std::string_view component, fmt::format_string<A...> f, A&&... a) {
  if (enabled(level::info)) write(level::info, component, fmt::format(f, std::forward<A>(a)...));
}
template <class... A>
void warn(std::string_view component, fmt::format_string<A...> f, A&&... a) {
  if (enabled(level::warn)) write(level::warn, component, fmt::format(f, std::forward<A>(a)...));
}
template <class... A>
void error(std::string_view component, fmt::format_string<A...> f, A&&... a) {
  if (enabled(level::error)) write(level::error, component, fmt::format(f, std::forward<A>(a)...));
}

}  // namespace seqcast::log
