#include "wire/vde.hpp"

#include <sys/socket.h>

#include <cstring>

namespace vnet::wire {
namespace {

std::uint32_t load_host32(Bytes b, std::size_t off) {
  std::uint32_t v;
  std::memcpy(&v, b.data() + off, sizeof v);
  return v;
}

void store_host32(std::vector<std::uint8_t>& out, std::size_t off, std::uint32_t v) {
  std::memcpy(out.data() + off, &v, sizeof v);
}

// A sockaddr_un as both messages carry it: family, then a path that must end
// with a NUL inside its 108 bytes.
VdeError parse_sockaddr(Bytes b, std::string& path) {
  std::uint16_t family;
  std::memcpy(&family, b.data(), sizeof family);
  if (family != AF_UNIX) return VdeError::BadFamily;
  const auto* chars = reinterpret_cast<const char*>(b.data() + 2);
  const void* nul = std::memchr(chars, 0, kVdePathMax);
  if (!nul) return VdeError::BadPath;
  const auto length = static_cast<std::size_t>(static_cast<const char*>(nul) - chars);
  if (length == 0 || chars[0] != '/') return VdeError::BadPath;
  path.assign(chars, length);
  return VdeError::None;
}

void store_sockaddr(std::vector<std::uint8_t>& out, std::size_t off, std::string_view path) {
  const std::uint16_t family = AF_UNIX;
  std::memcpy(out.data() + off, &family, sizeof family);
  std::memcpy(out.data() + off + 2, path.data(), std::min(path.size(), kVdePathMax - 1));
}

}  // namespace

const char* to_string(VdeError e) {
  switch (e) {
    case VdeError::None: return "ok";
    case VdeError::Truncated: return "truncated";
    case VdeError::TooLong: return "too long";
    case VdeError::BadMagic: return "bad magic (not a VDE plug)";
    case VdeError::BadVersion: return "unsupported protocol version (vnet speaks version 3)";
    case VdeError::BadType: return "unsupported request type";
    case VdeError::BadFamily: return "socket address is not AF_UNIX";
    case VdeError::BadPath: return "socket path empty, relative or unterminated";
  }
  return "unknown";
}

VdeRequestParse parse_vde_request(Bytes message) {
  VdeRequestParse out;
  if (message.size() < kVdeRequestFixed) {
    out.error = VdeError::Truncated;
    return out;
  }
  if (message.size() > kVdeRequestMax) {
    out.error = VdeError::TooLong;
    return out;
  }
  if (load_host32(message, 0) != kVdeMagic) {
    out.error = VdeError::BadMagic;
    return out;
  }
  if (load_host32(message, 4) != kVdeVersion) {
    out.error = VdeError::BadVersion;
    return out;
  }
  const std::uint32_t type = load_host32(message, 8);
  if ((type & 0xff) != 0) {
    out.error = VdeError::BadType;
    return out;
  }
  out.request.port_wish = type >> 8;
  out.error = parse_sockaddr(message.subspan(12, kVdeSockaddrLen), out.request.socket_path);
  if (!out.ok()) return out;
  for (std::uint8_t c : message.subspan(kVdeRequestFixed)) {
    if (c == 0) break;
    out.request.description += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
  }
  return out;
}

std::vector<std::uint8_t> emit_vde_reply(std::string_view socket_path) {
  std::vector<std::uint8_t> out(kVdeSockaddrLen, 0);
  store_sockaddr(out, 0, socket_path);
  return out;
}

VdeReplyParse parse_vde_reply(Bytes message) {
  VdeReplyParse out;
  if (message.size() < kVdeSockaddrLen) out.error = VdeError::Truncated;
  else if (message.size() > kVdeSockaddrLen) out.error = VdeError::TooLong;
  else out.error = parse_sockaddr(message, out.socket_path);
  return out;
}

std::vector<std::uint8_t> emit_vde_request(std::string_view socket_path, std::string_view description,
                                           std::uint32_t port_wish) {
  description = description.substr(0, kVdeDescriptionMax - 1);
  std::vector<std::uint8_t> out(kVdeRequestFixed + description.size() + 1, 0);
  store_host32(out, 0, kVdeMagic);
  store_host32(out, 4, kVdeVersion);
  store_host32(out, 8, port_wish << 8);
  store_sockaddr(out, 12, socket_path);
  std::memcpy(out.data() + kVdeRequestFixed, description.data(), description.size());
  return out;
}

}  // namespace vnet::wire
