// TFTP packets come from guests: the view, the request parser and the
// option lookup must survive any bytes, and what they return must lie
// inside the input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "wire/tftp.hpp"

namespace {

void inside(std::string_view s, const std::uint8_t* data, std::size_t size) {
  if (s.empty()) return;
  auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
  if (p < data || p + s.size() > data + size) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vnet::wire;
  auto pkt = TftpPacket::parse({data, size});
  if (!pkt) return 0;
  switch (pkt->opcode()) {
    case TftpOpcode::Data: (void)pkt->block(); (void)pkt->data().size(); break;
    case TftpOpcode::Ack: (void)pkt->block(); break;
    case TftpOpcode::Error: inside(pkt->error_message(), data, size); break;
    default: break;
  }
  auto req = TftpRequest::parse(*pkt);
  if (!req) return 0;
  if (req->filename.empty() || req->mode.empty()) __builtin_trap();
  inside(req->filename, data, size);
  inside(req->mode, data, size);
  if (req->option_count > TftpRequest::kMaxOptions) __builtin_trap();
  for (std::size_t i = 0; i < req->option_count; ++i) {
    inside(req->options[i].name, data, size);
    inside(req->options[i].value, data, size);
  }
  (void)req->find("blksize");
  // What was accepted re-emits and parses to the same strings.
  static std::uint8_t out[70000];
  std::size_t n = tftp_emit_request(out, req->opcode, req->filename, req->mode, req->options.data(), req->option_count);
  if (n == 0) __builtin_trap();
  auto again_pkt = TftpPacket::parse({out, n});
  if (!again_pkt) __builtin_trap();
  auto again = TftpRequest::parse(*again_pkt);
  if (!again || again->filename != req->filename || again->mode != req->mode ||
      again->option_count != req->option_count)
    __builtin_trap();
  return 0;
}
