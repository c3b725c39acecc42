#include "wire/ipaddr.hpp"

#include <algorithm>

#include <arpa/inet.h>
#include <fmt/format.h>

#include <charconv>

namespace vnet::wire {

namespace {

constexpr std::array<std::uint8_t, 12> kV4MappedPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// inet_pton needs a NUL-terminated string; the longest valid IPv6 text
// (with an embedded dotted quad) is INET6_ADDRSTRLEN-1 characters.
bool copy_cstr(std::string_view text, std::array<char, INET6_ADDRSTRLEN>& out) {
  if (text.empty() || text.size() >= out.size()) return false;
  std::memcpy(out.data(), text.data(), text.size());
  out[text.size()] = '\0';
  return true;
}

}  // namespace

std::string Ipv4Addr::to_string() const {
  return fmt::format("{}.{}.{}.{}", octets[0], octets[1], octets[2], octets[3]);
}

std::optional<Ipv4Addr> Ipv4Addr::parse(std::string_view text) {
  std::array<char, INET6_ADDRSTRLEN> buf;
  if (!copy_cstr(text, buf)) return std::nullopt;
  Ipv4Addr a;
  if (inet_pton(AF_INET, buf.data(), a.octets.data()) != 1) return std::nullopt;
  return a;
}

bool Ipv6Addr::is_v4_mapped() const {
  return std::memcmp(octets.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size()) == 0;
}

std::string Ipv6Addr::to_string() const {
  std::array<char, INET6_ADDRSTRLEN> buf{};
  inet_ntop(AF_INET6, octets.data(), buf.data(), buf.size());
  return std::string(buf.data());
}

std::optional<Ipv6Addr> Ipv6Addr::parse(std::string_view text) {
  std::array<char, INET6_ADDRSTRLEN> buf;
  if (!copy_cstr(text, buf)) return std::nullopt;
  Ipv6Addr a;
  if (inet_pton(AF_INET6, buf.data(), a.octets.data()) != 1) return std::nullopt;
  return a;
}

IpAddr::IpAddr(Ipv4Addr v4) {
  std::memcpy(addr_.octets.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size());
  std::memcpy(addr_.octets.data() + 12, v4.octets.data(), 4);
}

std::string IpAddr::to_string() const { return is_v4() ? v4().to_string() : addr_.to_string(); }

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  if (auto v4 = Ipv4Addr::parse(text)) return IpAddr(*v4);
  if (auto v6 = Ipv6Addr::parse(text)) return IpAddr(*v6);
  return std::nullopt;
}

std::string Ipv4Cidr::to_string() const { return fmt::format("{}/{}", addr.to_string(), prefix_len); }

std::optional<Ipv4Cidr> Ipv4Cidr::parse(std::string_view text) {
  const auto slash = text.find('/');
  auto addr = Ipv4Addr::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  if (slash == std::string_view::npos) return Ipv4Cidr{*addr, 32};
  const auto len_text = text.substr(slash + 1);
  unsigned len = 0;
  const auto* end = len_text.data() + len_text.size();
  auto [ptr, ec] = std::from_chars(len_text.data(), end, len);
  if (len_text.empty() || ec != std::errc{} || ptr != end || len > 32) return std::nullopt;
  return Ipv4Cidr{*addr, static_cast<std::uint8_t>(len)};
}

Ipv6Addr Ipv6Cidr::network() const {
  Ipv6Addr n = addr;
  for (std::size_t i = 0; i < n.octets.size(); ++i) {
    const int bits = std::clamp(static_cast<int>(prefix_len) - static_cast<int>(i) * 8, 0, 8);
    n.octets[i] &= static_cast<std::uint8_t>(0xff00 >> bits);
  }
  return n;
}

bool Ipv6Cidr::contains(const Ipv6Addr& a) const {
  const Ipv6Cidr other{a, prefix_len};
  return other.network() == network();
}

std::string Ipv6Cidr::to_string() const { return fmt::format("{}/{}", addr.to_string(), prefix_len); }

std::optional<Ipv6Cidr> Ipv6Cidr::parse(std::string_view text) {
  const auto slash = text.find('/');
  auto addr = Ipv6Addr::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  if (slash == std::string_view::npos) return Ipv6Cidr{*addr, 128};
  const auto len_text = text.substr(slash + 1);
  unsigned len = 0;
  const auto* end = len_text.data() + len_text.size();
  auto [ptr, ec] = std::from_chars(len_text.data(), end, len);
  if (len_text.empty() || ec != std::errc{} || ptr != end || len > 128) return std::nullopt;
  return Ipv6Cidr{*addr, static_cast<std::uint8_t>(len)};
}

}  // namespace vnet::wire
