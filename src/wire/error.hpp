// Shared parse error vocabulary and the result type returned by every
// wire-format parse().
//
// Parsing sits on the hot path of every frame a guest sends, so the result is
// a plain value: no exceptions, no allocation, trivially copyable when T is.
#pragma once

#include <cassert>
#include <cstdint>
#include <type_traits>

namespace vnet::wire {

enum class ParseError : std::uint8_t {
  Truncated,        // buffer shorter than the fixed header or a length field claims
  BadVersion,       // IP version nibble does not match the parser
  BadHeaderLength,  // IHL / data offset below its minimum
  BadLength,        // a length field smaller than the header it must cover
  BadChecksum,      // checksum present and wrong
  BadOption,        // malformed TCP option (length 0/1, overrun, wrong size)
  Unsupported,      // well-formed but outside what vnet handles (e.g. ARP over non-Ethernet)
};

constexpr const char* to_string(ParseError e) noexcept {
  switch (e) {
    case ParseError::Truncated: return "truncated";
    case ParseError::BadVersion: return "bad version";
    case ParseError::BadHeaderLength: return "bad header length";
    case ParseError::BadLength: return "bad length";
    case ParseError::BadChecksum: return "bad checksum";
    case ParseError::BadOption: return "bad option";
    case ParseError::Unsupported: return "unsupported";
  }
  return "unknown";
}

// Either a parsed value or the reason parsing failed.
//
// T must be default-constructible so the error case needs no union tricks;
// all views (a span) and reprs (plain fields) satisfy that cheaply.
template <class T>
class [[nodiscard]] Parsed {
  static_assert(std::is_default_constructible_v<T>);

 public:
  constexpr Parsed(T value) noexcept : value_(value), ok_(true) {}  // NOLINT(implicit)
  constexpr Parsed(ParseError e) noexcept : error_(e), ok_(false) {}  // NOLINT(implicit)

  constexpr bool ok() const noexcept { return ok_; }
  constexpr explicit operator bool() const noexcept { return ok_; }

  constexpr ParseError error() const noexcept {
    assert(!ok_);
    return error_;
  }
  constexpr const T& value() const noexcept {
    assert(ok_);
    return value_;
  }
  constexpr const T& operator*() const noexcept { return value(); }
  constexpr const T* operator->() const noexcept { return &value(); }

 private:
  T value_{};
  ParseError error_{ParseError::Truncated};
  bool ok_;
};

}  // namespace vnet::wire
