#include "privsep/request.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace vnet::privsep {
namespace {

void put16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  std::uint8_t b[2];
  std::memcpy(b, &v, 2);
  out.insert(out.end(), b, b + 2);
}

std::uint16_t get16(const std::uint8_t* p) {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.';
}

bool valid_name(const std::string& name, std::size_t max_len) {
  if (name.empty() || name.size() > max_len || name == "." || name == "..") return false;
  for (char c : name)
    if (!name_char(c)) return false;
  return true;
}

bool fail(std::string& why, const char* text) {
  why = text;
  return false;
}

bool check_fields(const Request& r, std::string& why) {
  switch (r.op) {
    case Op::OpenTap:
      if (!valid_ifname(r.a)) return fail(why, "bad interface name");
      if (!r.b.empty() && !valid_netns_name(r.b)) return fail(why, "bad namespace name");
      if (r.socket_type != SocketType::None) return fail(why, "socket type given for a TAP");
      return true;
    case Op::BindUnix:
      if (!valid_absolute_path(r.a, kMaxUnixPath)) return fail(why, "bad socket path");
      if (!r.b.empty()) return fail(why, "unexpected second field");
      if (r.socket_type != SocketType::Stream && r.socket_type != SocketType::Dgram)
        return fail(why, "bad socket type");
      return true;
    case Op::CreateFile:
      if (!valid_absolute_path(r.a, kMaxMessage)) return fail(why, "bad file path");
      if (!r.b.empty() || r.socket_type != SocketType::None) return fail(why, "unexpected field");
      return true;
    case Op::ConnectUnix:
      if (!valid_absolute_path(r.a, kMaxUnixPath)) return fail(why, "bad socket path");
      if (!r.b.empty() || r.socket_type != SocketType::Stream) return fail(why, "unexpected field");
      return true;
    case Op::BindInet:
      if (!valid_numeric_address(r.a)) return fail(why, "bad address");
      if (!parse_low_port(r.b)) return fail(why, "bad port (only 1 to 1023 go through the helper)");
      if (r.socket_type != SocketType::Stream && r.socket_type != SocketType::Dgram)
        return fail(why, "bad socket type");
      return true;
    case Op::ConnectDgram:
      if (!valid_absolute_path(r.a, kMaxUnixPath)) return fail(why, "bad socket path");
      if (!r.b.empty() || r.socket_type != SocketType::Dgram) return fail(why, "unexpected field");
      return true;
    case Op::OpenDir:
      if (!valid_absolute_path(r.a, kMaxMessage)) return fail(why, "bad directory path");
      if (!r.b.empty() || r.socket_type != SocketType::None) return fail(why, "unexpected field");
      return true;
    case Op::Cleanup:
      if (!r.a.empty() || !r.b.empty() || r.socket_type != SocketType::None) return fail(why, "unexpected field");
      return true;
    case Op::OpenPacket:
      if (!valid_ifname(r.a)) return fail(why, "bad interface name");
      if (!r.b.empty() && !valid_netns_name(r.b)) return fail(why, "bad namespace name");
      if (r.socket_type != SocketType::None) return fail(why, "unexpected field");
      return true;
    case Op::KernelNatUp: {
      if (!valid_ifname(r.a) || r.socket_type != SocketType::None) return fail(why, "bad bridge name");
      const auto space = r.b.find(' ');
      if (!valid_interface_address(r.b.substr(0, space))) return fail(why, "bad bridge address");
      if (space != std::string::npos && !valid_ifname(r.b.substr(space + 1))) return fail(why, "bad uplink name");
      return true;
    }
    case Op::KernelNatDown:
      if (!valid_ifname(r.a) || !r.b.empty() || r.socket_type != SocketType::None) return fail(why, "bad bridge name");
      return true;
    case Op::BridgeMember:
    case Op::BridgeUnmember:
      if (!valid_ifname(r.a) || !valid_ifname(r.b) || r.socket_type != SocketType::None)
        return fail(why, "bad bridge or interface name");
      return true;
    case Op::SetAddress:
      if (!valid_ifname(r.a) || r.socket_type != SocketType::None) return fail(why, "bad interface name");
      if (!valid_interface_address(r.b)) return fail(why, "bad interface address");
      return true;
  }
  return fail(why, "unknown operation");
}

}  // namespace

bool valid_ifname(const std::string& name) { return valid_name(name, kMaxIfname); }

bool valid_netns_name(const std::string& name) { return valid_name(name, kMaxNetnsName); }

bool valid_absolute_path(const std::string& path, std::size_t max_len) {
  if (path.size() < 2 || path.size() > max_len || path[0] != '/' || path.back() == '/') return false;
  if (path.find('\0') != std::string::npos) return false;
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string_view part(path.data() + start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

std::optional<std::uint16_t> parse_low_port(const std::string& text) {
  if (text.empty() || text.size() > 4 || text[0] == '0') return std::nullopt;
  unsigned v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v == 0 || v >= 1024) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

bool valid_interface_address(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos || text.size() - slash < 2 || text.size() - slash > 3) return false;
  int len = 0;
  for (std::size_t i = slash + 1; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    len = len * 10 + (text[i] - '0');
  }
  in_addr scratch{};
  const std::string addr = text.substr(0, slash);
  return len >= 1 && len <= 30 && text[slash + 1] != '0' && ::inet_pton(AF_INET, addr.c_str(), &scratch) == 1;
}

bool valid_numeric_address(const std::string& text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return false;
  in6_addr scratch{};
  return ::inet_pton(AF_INET, text.c_str(), &scratch) == 1 || ::inet_pton(AF_INET6, text.c_str(), &scratch) == 1;
}

std::vector<std::uint8_t> encode(const Request& r) {
  std::vector<std::uint8_t> out;
  out.reserve(kHeaderLen + r.a.size() + r.b.size());
  out.push_back(static_cast<std::uint8_t>(r.op));
  out.push_back(static_cast<std::uint8_t>(r.socket_type));
  put16(out, 0);
  put16(out, static_cast<std::uint16_t>(r.a.size()));
  put16(out, static_cast<std::uint16_t>(r.b.size()));
  out.insert(out.end(), r.a.begin(), r.a.end());
  out.insert(out.end(), r.b.begin(), r.b.end());
  return out;
}

std::optional<Request> parse_request(std::span<const std::uint8_t> bytes, std::string& why) {
  if (bytes.size() < kHeaderLen) {
    why = "short request";
    return std::nullopt;
  }
  if (bytes.size() > kMaxMessage) {
    why = "oversize request";
    return std::nullopt;
  }
  const std::uint8_t* p = bytes.data();
  if (get16(p + 2) != 0) {
    why = "reserved bits set";
    return std::nullopt;
  }
  const std::size_t len_a = get16(p + 4), len_b = get16(p + 6);
  if (kHeaderLen + len_a + len_b != bytes.size()) {
    why = "lengths do not match the request size";
    return std::nullopt;
  }
  if (p[1] > static_cast<std::uint8_t>(SocketType::Dgram)) {
    why = "bad socket type";
    return std::nullopt;
  }
  if (p[0] < static_cast<std::uint8_t>(Op::OpenTap) || p[0] > static_cast<std::uint8_t>(kLastOp)) {
    why = "unknown operation";
    return std::nullopt;
  }
  Request r;
  r.op = static_cast<Op>(p[0]);
  r.socket_type = static_cast<SocketType>(p[1]);
  r.a.assign(reinterpret_cast<const char*>(p + kHeaderLen), len_a);
  r.b.assign(reinterpret_cast<const char*>(p + kHeaderLen + len_a), len_b);
  if (r.a.find('\0') != std::string::npos || r.b.find('\0') != std::string::npos) {
    why = "NUL byte in a field";
    return std::nullopt;
  }
  if (!check_fields(r, why)) return std::nullopt;
  return r;
}

std::vector<std::uint8_t> encode(const Reply& reply) {
  std::vector<std::uint8_t> out;
  out.push_back(reply.ok ? 1 : 0);
  out.push_back(0);
  put16(out, 0);
  std::uint8_t err[4];
  const std::int32_t e = reply.error;
  std::memcpy(err, &e, 4);
  out.insert(out.end(), err, err + 4);
  const std::size_t room = kMaxMessage - kHeaderLen;
  out.insert(out.end(), reply.message.begin(),
             reply.message.begin() + static_cast<std::ptrdiff_t>(std::min(room, reply.message.size())));
  return out;
}

std::optional<Reply> parse_reply(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < kHeaderLen || bytes.size() > kMaxMessage || bytes[0] > 1) return std::nullopt;
  Reply r;
  r.ok = bytes[0] == 1;
  std::int32_t e;
  std::memcpy(&e, bytes.data() + 4, 4);
  r.error = e;
  r.message.assign(reinterpret_cast<const char*>(bytes.data() + kHeaderLen), bytes.size() - kHeaderLen);
  return r;
}

}  // namespace vnet::privsep
