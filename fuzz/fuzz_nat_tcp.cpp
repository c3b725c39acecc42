// The TCP translator fed hostile segments: a valid IPv4 header is built
// around each fuzzed TCP segment (checksum filled unless the input asks not
// to), new connections go to 127.0.0.1:1 where nothing listens, and the event
// loop runs briefly so connect failures, timers and RSTs are exercised.
// Input: a sequence of records [flags byte][len byte][len bytes of segment].
// flags bit 0: keep the fuzzed checksum; bit 1: guest MAC unknown;
// bit 2: policy refuses (empty target).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/event_loop.hpp"
#include "fuzz_sink.hpp"
#include "nat/tcp.hpp"
#include "wire/checksum.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

using namespace vnet;
using namespace vnet::wire;
using vnet::fuzz::check;
using vnet::fuzz::sink;

namespace {

class FuzzIo : public nat::GuestIo {
 public:
  EventLoop& loop() override { return ev; }
  const nat::NatConfig& config() const override { return cfg; }
  nat::NatCounters& counters() override { return ctr; }
  MutBytes l4_buffer() override { return {buf.data(), buf.size()}; }
  bool send_l4_in_place(Ipv4Addr, Ipv4Addr, IpProtocol, std::size_t len) override {
    check(len <= buf.size());
    sink(len);
    return mac_known;
  }
  bool send_udp(Ipv4Addr, std::uint16_t, Ipv4Addr, std::uint16_t, Bytes) override { return false; }
  const MacAddr* guest_mac(Ipv4Addr) const override { return mac_known ? &mac : nullptr; }

  EventLoop ev;
  nat::NatConfig cfg;
  nat::NatCounters ctr;
  std::vector<std::uint8_t> buf = std::vector<std::uint8_t>(1500);
  bool mac_known = true;
  MacAddr mac{{2, 0, 0, 0, 0, 1}};
};

SockAddr closed_port() {
  SockAddr s;
  auto* in = reinterpret_cast<sockaddr_in*>(&s.storage);
  in->sin_family = AF_INET;
  in->sin_port = htons(1);
  in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s.length = sizeof(sockaddr_in);
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzIo io;
  io.cfg.max_flows = 8;
  const Ipv4Addr guest{{10, 0, 2, 15}}, gw{{10, 0, 2, 2}};
  {
    nat::TcpTranslator tcp(io);
    std::uint8_t pkt[20 + 255];
    std::size_t at = 0;
    int records = 0;
    while (at + 2 <= size && records++ < 64) {
      const std::uint8_t flags = data[at];
      const std::size_t len = std::min<std::size_t>(data[at + 1], size - at - 2);
      std::memcpy(pkt + 20, data + at + 2, len);
      at += 2 + len;
      if (len >= 18 && !(flags & 1)) {
        store_be16(MutBytes(pkt + 20, len), 16, 0);
        store_be16(MutBytes(pkt + 20, len), 16,
                   internet_checksum(Bytes(pkt + 20, len), pseudo_header_v4(guest, gw, 6, static_cast<std::uint16_t>(len))));
      }
      Ipv4Repr ip{guest, gw, IpProtocol::Tcp, 64, static_cast<std::uint16_t>(len)};
      ip.emit(MutBytes(pkt, 20));
      auto parsed = Ipv4Packet::parse(Bytes(pkt, 20 + len));
      check(parsed.ok());
      io.mac_known = !(flags & 2);
      tcp.on_segment(*parsed, (flags & 4) ? SockAddr{} : closed_port());
      if (flags & 8) {
        Timer stop(io.ev, [&] { io.ev.stop(); });
        stop.arm_in(200 * kMicros);
        io.ev.run();
      }
    }
    sink(tcp.status().size());
  }
  return 0;
}
