// Arbitrary frames from three ports into a learning switch: Ethernet/802.1Q
// parsing, learning, MAC moves and limits, VLAN filtering. Input: a sequence
// of [port byte][length byte][frame bytes].
#include <cstddef>
#include <cstdint>

#include "fabric/network.hpp"

namespace {

class NullPort : public vnet::Port {
 public:
  using Port::Port;
  std::string kind() const override { return "null"; }
  void inject(vnet::wire::Bytes f) { from_peer(f); }

 protected:
  void send_to_peer(vnet::wire::Bytes f) override {
    if (f.size() < 14) __builtin_trap();
    counters_.tx_frames++;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  vnet::EventLoop loop;
  vnet::NetworkOptions options;
  options.mtu = 200;
  options.macs_per_port = 4;
  vnet::Network net(loop, "fuzz", options);
  NullPort* ports[3];
  for (int i = 0; i < 3; ++i) {
    auto p = std::make_unique<NullPort>(loop, net, net.next_port_id());
    p->set_vlan(static_cast<std::uint16_t>(i == 2 ? 7 : 0));
    ports[i] = p.get();
    net.add_port(std::move(p));
  }
  std::size_t at = 0;
  while (at + 2 <= size) {
    NullPort* from = ports[data[at] % 3];
    std::size_t len = std::min<std::size_t>(data[at + 1] * 2u, size - at - 2);
    from->inject({data + at + 2, len});
    at += 2 + len;
  }
  if (net.mac_table().size() > 12) __builtin_trap();
  return 0;
}
