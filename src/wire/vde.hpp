// The control messages of vde2's switch protocol (version 3), as a VDE plug
// (libvdeplug: QEMU -netdev vde, vde_plug, vde_plug2tap) and a vde_switch
// exchange them over the switch's control socket DIR/ctl:
//
//   request, plug -> switch, one write on the stream socket:
//     0   u32 magic 0xfeedface   (host byte order: both ends share a host)
//     4   u32 version 3
//     8   u32 type: low byte 0 (new connection), bits 8.. a port wish (0: any)
//     12  sockaddr_un (110 bytes): the plug's datagram socket
//     122 description, up to 128 bytes, not always NUL-terminated
//   reply, switch -> plug: a sockaddr_un (110 bytes), the switch's datagram
//   socket for this plug. The plug connects its datagram socket there; from
//   then on each datagram is one Ethernet frame, without header, and closing
//   the control connection unplugs.
//
// Both messages come from another process, possibly another user's: parsing
// is strict and every way a message can be wrong has its own error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "wire/bytes.hpp"

namespace vnet::wire {

enum class VdeError : std::uint8_t {
  None,
  Truncated,     // shorter than the fixed part of the message
  TooLong,       // longer than the largest request (250 bytes) or reply (110)
  BadMagic,      // not 0xfeedface: not a VDE plug (or another byte order)
  BadVersion,    // a protocol version other than 3
  BadType,       // a request type other than "new connection"
  BadFamily,     // the socket address is not AF_UNIX
  BadPath,       // the socket path is empty, relative or not NUL-terminated
};

const char* to_string(VdeError e);

struct VdeRequest {
  std::uint32_t port_wish = 0;  // 0: any port
  std::string socket_path;      // the plug's datagram socket
  std::string description;      // printable ASCII only (others become '?')
};

struct VdeRequestParse {
  VdeRequest request;
  VdeError error = VdeError::None;
  bool ok() const { return error == VdeError::None; }
};

struct VdeReplyParse {
  std::string socket_path;
  VdeError error = VdeError::None;
  bool ok() const { return error == VdeError::None; }
};

inline constexpr std::uint32_t kVdeMagic = 0xfeedface;
inline constexpr std::uint32_t kVdeVersion = 3;
inline constexpr std::size_t kVdeSockaddrLen = 110;  // sizeof(sockaddr_un) on Linux
inline constexpr std::size_t kVdePathMax = 108;
inline constexpr std::size_t kVdeRequestFixed = 12 + kVdeSockaddrLen;
inline constexpr std::size_t kVdeDescriptionMax = 128;
inline constexpr std::size_t kVdeRequestMax = kVdeRequestFixed + kVdeDescriptionMax;

VdeRequestParse parse_vde_request(Bytes message);
// The reply a switch sends; the path must fit (kVdePathMax - 1 bytes).
std::vector<std::uint8_t> emit_vde_reply(std::string_view socket_path);

VdeReplyParse parse_vde_reply(Bytes message);
// The request a plug sends (the description is cut to 127 bytes).
std::vector<std::uint8_t> emit_vde_request(std::string_view socket_path, std::string_view description,
                                           std::uint32_t port_wish = 0);

}  // namespace vnet::wire
