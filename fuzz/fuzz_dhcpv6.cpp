// DHCPv6 messages from guests: the view, its nested IA walk and the
// accessors must stay in bounds on any input, and every IA_NA the view
// hands out must be one that parse() accepted.
#include <cstddef>
#include <cstdint>

#include "fuzz_sink.hpp"
#include "wire/dhcpv6.hpp"

using namespace vnet::wire;
using vnet::fuzz::check;
using vnet::fuzz::sink;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes in(data, size);
  auto m = Dhcp6Message::parse(in);
  if (!m) return 0;
  sink(static_cast<int>(m->type()) + m->xid() + m->client_id().size() + m->server_id().size());
  sink(m->rapid_commit() + m->requests_option(23));
  if (auto e = m->elapsed_time()) sink(*e);
  m->for_each_ia_na([](const Dhcp6IaNa& ia) {
    sink(ia.iaid + ia.t1 + ia.t2);
    if (auto a = ia.first_addr()) sink(a->addr.octets[15] + a->valid_lifetime + a->options.size());
  });
  return 0;
}
