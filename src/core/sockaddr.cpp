#include "core/sockaddr.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

#include "core/error.hpp"

namespace vnet {

std::string SockAddr::to_string() const {
  char host[INET6_ADDRSTRLEN] = {};
  switch (family()) {
    case AF_UNIX: {
      auto* un = reinterpret_cast<const sockaddr_un*>(&storage);
      if (length <= offsetof(sockaddr_un, sun_path)) return "unix:(unnamed)";
      return std::string("unix:") + un->sun_path;
    }
    case AF_INET: {
      auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
      inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
      return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
    }
    case AF_INET6: {
      auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
      inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
      return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
  }
  return "?";
}

bool SockAddr::operator==(const SockAddr& o) const {
  if (family() != o.family()) return false;
  if (family() == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&storage);
    auto* b = reinterpret_cast<const sockaddr_in*>(&o.storage);
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  return length == o.length && std::memcmp(&storage, &o.storage, length) == 0;
}

std::uint16_t SockAddr::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

SockAddr SockAddr::from_ipv4(wire::Ipv4Addr addr, std::uint16_t port) {
  SockAddr s;
  auto* in = reinterpret_cast<sockaddr_in*>(&s.storage);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  std::memcpy(&in->sin_addr, addr.octets.data(), 4);
  s.length = sizeof(sockaddr_in);
  return s;
}

SockAddr SockAddr::from_ip(const wire::IpAddr& addr, std::uint16_t port) {
  if (addr.is_v4()) return from_ipv4(addr.v4(), port);
  SockAddr s;
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&s.storage);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  std::memcpy(&in6->sin6_addr, addr.v6().octets.data(), 16);
  s.length = sizeof(sockaddr_in6);
  return s;
}

std::optional<wire::IpAddr> SockAddr::ip() const {
  if (family() == AF_INET) {
    wire::Ipv4Addr a;
    std::memcpy(a.octets.data(), &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, 4);
    return wire::IpAddr(a);
  }
  if (family() == AF_INET6) {
    wire::Ipv6Addr a;
    std::memcpy(a.octets.data(), &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, 16);
    return wire::IpAddr(a);
  }
  return std::nullopt;
}

SockAddr SockAddr::unix_path(const std::string& path) {
  SockAddr a;
  auto* un = reinterpret_cast<sockaddr_un*>(&a.storage);
  if (path.empty()) throw UserError("a unix socket path is empty");
  if (path.size() >= sizeof un->sun_path)
    throw UserError("unix socket path too long (max " + std::to_string(sizeof un->sun_path - 1) +
                    " bytes): " + path);
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  a.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return a;
}

SockAddr SockAddr::inet(const std::string& host, const std::string& port, bool passive) {
  if (port.empty()) throw UserError("missing port number");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0)
    throw UserError("cannot resolve '" + host + ":" + port + "': " + gai_strerror(rc));
  SockAddr a;
  // Prefer IPv4 when a name has both: QEMU's defaults are IPv4.
  const addrinfo* pick = res;
  for (auto* r = res; r; r = r->ai_next)
    if (r->ai_family == AF_INET) {
      pick = r;
      break;
    }
  std::memcpy(&a.storage, pick->ai_addr, pick->ai_addrlen);
  a.length = pick->ai_addrlen;
  freeaddrinfo(res);
  return a;
}

SockAddr SockAddr::inet_hostport(std::string_view text, bool passive) {
  std::string host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw UserError("bad address '" + std::string(text) + "': expected [IPv6]:PORT");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
      throw UserError("bad address '" + std::string(text) + "': expected HOST:PORT");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  return inet(host, port, passive);
}

}  // namespace vnet
