// The request/reply format between the unprivileged engine and the
// privileged helper (see privsep/helper.hpp).
//
// The helper runs as root and must assume the engine has been taken over by
// a hostile guest, so every request is parsed as hostile input: a fixed
// 8-byte header, then two length-prefixed strings, all bounds-checked, and
// each field checked against the shape its operation allows before the
// helper looks at the file system. One request or reply is one datagram on a
// SOCK_SEQPACKET socketpair; an fd travels with a reply as SCM_RIGHTS.
//
//   request: u8 op | u8 socket type | u16 reserved | u16 len_a | u16 len_b | a | b
//   reply:   u8 ok | u8 reserved | u16 reserved | i32 errno | message text
//
// Numbers are in host byte order: both ends are the same binary on the same
// machine. No field may hold a NUL byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace vnet::privsep {

enum class Op : std::uint8_t {
  OpenTap = 1,     // a: interface name, b: namespace name ("" = the helper's own)
  BindUnix = 2,    // a: absolute socket path; socket type: stream or dgram
  CreateFile = 3,  // a: absolute path of a capture file to create or truncate
  Cleanup = 4,     // remove the run dir's pid file and sockets: the engine is stopping
  ConnectUnix = 5, // a: absolute path of a listening stream socket to connect to
  BindInet = 6,    // a: numeric IPv4/IPv6 address, b: port 1-1023 in decimal; stream or dgram
  OpenDir = 7,     // a: absolute path of a directory to read from (a TFTP root); O_PATH
  ConnectDgram = 8,  // a: absolute path of a unix datagram socket; the engine's socket comes along
  OpenPacket = 9,    // a: interface name (one root allowed), b: namespace name; a bridged network's uplink
  KernelNatUp = 10,  // a: vn-... bridge, b: "A.B.C.D/LEN" or "A.B.C.D/LEN UPLINK"
  KernelNatDown = 11,  // a: vn-... bridge
  BridgeMember = 12,   // a: vn-... bridge, b: interface to join (vn-..., or one root allowed)
  BridgeUnmember = 13, // a: vn-... bridge, b: interface to take out
  SetAddress = 14,     // a: vn-... interface, b: "A.B.C.D/LEN"
};
inline constexpr Op kLastOp = Op::SetAddress;

enum class SocketType : std::uint8_t { None = 0, Stream = 1, Dgram = 2 };

struct Request {
  Op op = Op::Cleanup;
  SocketType socket_type = SocketType::None;
  std::string a;
  std::string b;
};

struct Reply {
  bool ok = false;
  int error = 0;  // errno of the failed call, 0 if none
  std::string message;
};

inline constexpr std::size_t kHeaderLen = 8;
inline constexpr std::size_t kMaxMessage = 4096;
inline constexpr std::size_t kMaxIfname = 15;     // IFNAMSIZ - 1
inline constexpr std::size_t kMaxNetnsName = 64;
inline constexpr std::size_t kMaxUnixPath = 107;  // sizeof sun_path - 1

std::vector<std::uint8_t> encode(const Request& request);
// The request, or nullopt with why set, for anything not exactly well formed.
std::optional<Request> parse_request(std::span<const std::uint8_t> bytes, std::string& why);

std::vector<std::uint8_t> encode(const Reply& reply);
std::optional<Reply> parse_reply(std::span<const std::uint8_t> bytes);

// Field shapes, shared by the parser and by the engine side for early errors.
bool valid_ifname(const std::string& name);
bool valid_netns_name(const std::string& name);
// Absolute, no empty, "." or ".." component, no trailing slash, no NUL.
bool valid_absolute_path(const std::string& path, std::size_t max_len);
// A port below 1024 written in plain decimal ("1" to "1023", no sign or zeros in front).
std::optional<std::uint16_t> parse_low_port(const std::string& text);
bool valid_numeric_address(const std::string& text);
// "A.B.C.D/LEN" with LEN 1 to 30.
bool valid_interface_address(const std::string& text);

}  // namespace vnet::privsep
