// The VXLAN input path as a tunnel port runs it on each datagram from the
// network: parse the header, then learn the inner source MAC behind the
// sending endpoint. Any bytes either parse into a VNI within 24 bits and an
// inner frame with a whole Ethernet header, or fail with a named error; the
// MAC table never outgrows its bound; a header re-emitted parses the same.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ports/vxlan_fdb.hpp"
#include "wire/vxlan.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vnet;
  static VxlanFdb fdb;  // lives across inputs, as the port's table does
  static Nanos now = 0;
  const wire::Bytes input(data, size);
  const auto parsed = wire::parse_vxlan(input);
  if (!parsed.ok()) {
    if (wire::to_string(parsed.error)[0] == '?') __builtin_trap();
    return 0;
  }
  if (parsed.vni > wire::kVxlanMaxVni || parsed.inner.size() < 14 ||
      parsed.inner.size() != size - wire::kVxlanHeaderSize)
    __builtin_trap();
  now += static_cast<Nanos>(data[1]) * kSeconds;  // reserved bits: free for the fuzzer to steer time
  const auto source = wire::MacAddr::from_bytes(parsed.inner.subspan(6, 6));
  const auto endpoint = static_cast<VxlanFdb::Remote>(data[2]);
  if (fdb.learn(source, endpoint, now) && !source.is_multicast() && !source.is_zero() &&
      fdb.lookup(source, now) != endpoint)
    __builtin_trap();
  if (fdb.size() > VxlanFdb::kMaxEntries) __builtin_trap();
  std::uint8_t header[wire::kVxlanHeaderSize];
  wire::emit_vxlan_header(header, parsed.vni);
  std::uint8_t again[wire::kVxlanHeaderSize + 14] = {};
  std::memcpy(again, header, sizeof header);
  if (wire::parse_vxlan(again).vni != parsed.vni) __builtin_trap();
  return 0;
}
