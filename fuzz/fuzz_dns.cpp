// DNS: the message view must stay in bounds and terminate on any input
// (compression loops included), and the forwarder must take any guest query
// without crashing. Upstream is 127.0.0.1:1, so forwarded queries go nowhere.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/event_loop.hpp"
#include "fuzz_sink.hpp"
#include "nat/dns.hpp"
#include "support/fake_guest_io.hpp"
#include "wire/dns.hpp"
#include "wire/udp.hpp"

using namespace vnet;
using namespace vnet::wire;
using vnet::fuzz::check;
using vnet::fuzz::sink;

namespace {

void exercise_view(Bytes b) {
  auto m = DnsMessage::parse(b);
  if (!m) return;
  check(m->questions_end() <= b.size());
  sink(m->id() + m->qdcount() + m->ancount() + m->truncated());
  if (auto q = m->question()) {
    check(q->name.len >= 1 && q->name.len <= DnsName::kMaxLen);
    sink(q->name.to_string().size() + q->qtype);
  }
  if (auto e = m->edns_udp_size()) check(*e >= DnsMessage::kClassicUdpSize);
  // Every offset as a name start: the decompressor must terminate in bounds.
  DnsName name;
  for (std::size_t off = 0; off < b.size(); ++off) {
    auto after = read_dns_name(b, off, name);
    if (after) check(*after <= b.size() && name.len <= DnsName::kMaxLen);
  }
  std::uint8_t out[512];
  const std::size_t n = dns_truncate(*m, out);
  if (n) {
    auto t = DnsMessage::parse(Bytes(out, n));
    check(t.ok() && t->truncated() && t->ancount() == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes b(data, size);
  exercise_view(b);

  static EventLoop loop;  // sockets are per forwarder; the loop is only a registry
  nat::testing::FakeGuestIo io(loop);
  io.cfg.dns_upstream = {"127.0.0.1:1"};
  io.record = false;
  nat::DnsForwarder fwd(io);
  fwd.on_query(Ipv4Addr{{10, 0, 2, 15}}, 5353, b);
  const auto& c = io.counters();
  check(c.dns_queries + c.drop_malformed + c.drop_flow_limit == 1);
  check(io.sends == 0);  // no answer without an upstream
  return 0;
}
