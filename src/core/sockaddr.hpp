// Socket addresses: unix paths and host:port, as QEMU's options spell them.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "wire/ipaddr.hpp"

namespace vnet {

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
  std::string to_string() const;
  bool operator==(const SockAddr& o) const;

  // The port of an inet address (0 for others).
  std::uint16_t port() const;

  static SockAddr unix_path(const std::string& path);
  static SockAddr from_ipv4(wire::Ipv4Addr addr, std::uint16_t port);
  // The one conversion between socket addresses and wire::IpAddr: an IPv4
  // (or IPv4-mapped) IpAddr becomes AF_INET, any other AF_INET6.
  static SockAddr from_ip(const wire::IpAddr& addr, std::uint16_t port);
  // The address of an AF_INET or AF_INET6 socket address (an IPv4-mapped
  // IPv6 address comes back as IPv4); nullopt for other families.
  std::optional<wire::IpAddr> ip() const;
  // Resolves host (name or literal; empty means any address) and port.
  static SockAddr inet(const std::string& host, const std::string& port, bool passive);
  // "host:port", "[v6]:port" or ":port" (QEMU's legacy -net socket syntax).
  static SockAddr inet_hostport(std::string_view text, bool passive);
};

}  // namespace vnet
