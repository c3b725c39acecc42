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
#include "wire/dns.hpp"
#include "wire/udp.hpp"

using namespace vnet;
using namespace vnet::wire;
using vnet::fuzz::check;
using vnet::fuzz::sink;

namespace {

class RecordingIo : public nat::GuestIo {
 public:
  explicit RecordingIo(EventLoop& loop) : loop_(loop), buf_(1480) { config_.dns_upstream = {"127.0.0.1:1"}; }
  EventLoop& loop() override { return loop_; }
  const nat::NatConfig& config() const override { return config_; }
  nat::NatCounters& counters() override { return counters_; }
  MutBytes l4_buffer() override { return buf_; }
  bool send_l4_in_place(Ipv4Addr, Ipv4Addr, IpProtocol, std::size_t len) override {
    check(len <= buf_.size());
    sent++;
    return true;
  }
  bool send_udp(Ipv4Addr, std::uint16_t, Ipv4Addr, std::uint16_t, Bytes payload) override {
    check(payload.size() + 8 <= buf_.size());
    sent++;
    return true;
  }
  const MacAddr* guest_mac(Ipv4Addr) const override { return nullptr; }
  std::size_t sent = 0;

 private:
  EventLoop& loop_;
  nat::NatConfig config_;
  nat::NatCounters counters_;
  std::vector<std::uint8_t> buf_;
};

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
  RecordingIo io(loop);
  nat::DnsForwarder fwd(io);
  fwd.on_query(Ipv4Addr{{10, 0, 2, 15}}, 5353, b);
  const auto& c = io.counters();
  check(c.dns_queries + c.drop_malformed + c.drop_flow_limit == 1);
  check(io.sent == 0);  // no answer without an upstream
  return 0;
}
