#include "nat/udp.hpp"

#include <nlohmann/json.hpp>

namespace vnet::nat {

struct UdpTranslator::State {
  GuestIo& io;
};

UdpTranslator::UdpTranslator(GuestIo& io) : state_(new State{io}) {}
UdpTranslator::~UdpTranslator() = default;
void UdpTranslator::on_datagram(wire::Ipv4Addr, std::uint16_t, wire::Ipv4Addr, std::uint16_t, const SockAddr&,
                                wire::Bytes) {
  state_->io.counters().drop_unsupported++;
}
nlohmann::json UdpTranslator::status() const { return nlohmann::json::array(); }

}  // namespace vnet::nat
