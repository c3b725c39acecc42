// DHCP messages from guests: the parser must stay in bounds on any input,
// and the server fed with it must never crash, must answer only with
// well-formed BOOTREPLYs, and must keep its lease table within max_leases.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_sink.hpp"
#include "nat/dhcp.hpp"
#include "wire/dhcp.hpp"

using namespace vnet;
using namespace vnet::wire;
using vnet::fuzz::check;
using vnet::fuzz::sink;

namespace {

class RecordingIo : public nat::GuestIo {
 public:
  EventLoop& loop() override { return loop_; }
  const nat::NatConfig& config() const override { return cfg; }
  nat::NatCounters& counters() override { return ctr; }
  MutBytes l4_buffer() override { return buf_; }
  bool send_l4_in_place(Ipv4Addr, Ipv4Addr, IpProtocol, std::size_t) override { return false; }
  bool send_udp(Ipv4Addr, std::uint16_t sport, Ipv4Addr, std::uint16_t dport, Bytes payload) override {
    check(sport == 67 && dport == 68 && payload.size() >= 300);
    auto p = DhcpPacket::parse(payload);
    check(p.ok() && p->op() == DhcpPacket::kBootReply && p->message_type().has_value());
    ++replies;
    return true;
  }
  const MacAddr* guest_mac(Ipv4Addr) const override { return nullptr; }

  nat::NatConfig cfg;
  nat::NatCounters ctr;
  std::size_t replies = 0;

 private:
  EventLoop loop_;
  std::vector<std::uint8_t> buf_ = std::vector<std::uint8_t>(1480);
};

void exercise_view(const DhcpPacket& p) {
  sink(p.xid() + p.secs() + p.flags() + p.hlen() + p.overload());
  sink(p.sname().size() + p.file().size() + p.chaddr().size());
  sink(p.client_id().size() + p.hostname().size() + p.param_request_list().size());
  if (auto t = p.message_type()) sink(static_cast<int>(*t));
  if (auto a = p.requested_ip()) sink(a->to_u32());
  if (auto l = p.lease_time()) sink(*l);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes in(data, size);
  if (auto p = DhcpPacket::parse(in)) exercise_view(*p);

  // A small network, so that exhaustion and reclaiming are reachable too.
  static RecordingIo io;
  static nat::DhcpServer* server = nullptr;
  static int runs = 0;
  if (!server || ++runs % 512 == 0) {
    delete server;
    io.cfg.net = Ipv4Cidr{{{10, 0, 2, 0}}, 28};
    io.cfg.dhcp_start = Ipv4Addr{{10, 0, 2, 4}};
    io.cfg.max_leases = 8;
    io.cfg.domain = "vnet.test";
    io.cfg.bootfile = "pxelinux.0";
    server = new nat::DhcpServer(io);
    server->reserve(MacAddr{{2, 0, 0, 0, 0, 1}}, Ipv4Addr{{10, 0, 2, 9}});
  }
  // Mostly from the MAC the message names (as a real guest), sometimes from
  // another one (a guest speaking for someone else), on one of a few ports.
  MacAddr src{{2, 0, 0, 0, 0, 2}};
  auto parsed = DhcpPacket::parse(in);
  if (parsed && parsed->is_ethernet() && (size % 8) != 0) src = parsed->client_mac();
  server->on_message(src, in, static_cast<PortId>(size % 3));
  const auto st = server->status();
  std::size_t live = 0;
  for (const auto& l : st) live += l["state"] != "declined";
  check(live <= io.cfg.max_leases);
  return 0;
}
