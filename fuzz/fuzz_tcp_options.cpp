// TCP option lists: the parser must terminate, stay in bounds, and whatever
// it accepts must survive emit -> parse unchanged.
#include <cstddef>
#include <cstdint>

#include "fuzz_sink.hpp"
#include "wire/tcp.hpp"

using namespace vnet::wire;
using vnet::fuzz::check;
using vnet::fuzz::sink;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Real option space is at most 40 bytes, but longer input still must be safe.
  const Bytes opts(data, size);

  TcpOptionReader reader(opts);
  std::size_t steps = 0;
  while (auto o = reader.next()) {
    check(++steps <= size);
    check(o->data.data() >= data && o->data.data() + o->data.size() <= data + size);
    sink(o->kind + o->data.size());
  }

  auto parsed = TcpOptions::parse(opts);
  if (!parsed) {
    check(parsed.error() == ParseError::BadOption);
    return 0;
  }
  std::uint8_t buf[64];
  const std::size_t n = parsed->emit(buf);
  check(n == parsed->emit_len() && n % 4 == 0 && n <= sizeof(buf));
  auto again = TcpOptions::parse(Bytes(buf, n));
  check(again.ok());
  check(*again == *parsed);
  return 0;
}
