// IPv6 packets from guests: the fixed header view and the extension-header
// walk must stay in bounds on any input, respect their limits, and hand out
// an upper-layer span that lies inside the packet right after the headers
// they skipped.
#include <cstddef>
#include <cstdint>

#include "fuzz_sink.hpp"
#include "wire/ipv6.hpp"

using namespace vnet::wire;
using vnet::fuzz::check;
using vnet::fuzz::sink;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto p = Ipv6Packet::parse(Bytes(data, size));
  if (!p) return 0;
  check(p->bytes().size() == Ipv6Packet::kHeaderLen + p->payload_len());
  auto w = walk_extension_headers(*p);
  if (!w) return 0;
  const Bytes payload = p->payload();
  check(w->extension_len <= Ipv6Payload::kMaxExtensionBytes);
  check(w->extension_len + w->l4.size() == payload.size());
  check(w->l4.data() == payload.data() + w->extension_len);
  check(w->protocol != IpProtocol::HopByHop || w->fragment_offset != 0);
  if (!w->l4.empty()) sink(w->l4[0] + w->l4[w->l4.size() - 1]);
  sink(static_cast<std::uint8_t>(w->is_fragment()) + w->fragment_id);
  return 0;
}
