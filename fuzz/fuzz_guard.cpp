// The switch's server guard (fabric/guard) reads every IPv4 and IPv6 frame
// from guests on a network vnet serves: it must stay in bounds on any input
// and give one answer per input. The first byte picks the EtherType.
#include <cstddef>
#include <cstdint>

#include "fabric/guard.hpp"
#include "fuzz_sink.hpp"

using namespace vnet::wire;
using vnet::fuzz::check;
using vnet::fuzz::sink;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const EtherType type = (data[0] & 1) ? EtherType::Ipv6 : EtherType::Ipv4;
  const Bytes l3(data + 1, size - 1);
  const bool first = vnet::is_server_message(type, l3);
  check(first == vnet::is_server_message(type, l3));
  sink(static_cast<std::uint8_t>(first));
  return 0;
}
