#include "nat/tcp.hpp"

#include <nlohmann/json.hpp>

namespace vnet::nat {

struct TcpTranslator::State {
  GuestIo& io;
};

TcpTranslator::TcpTranslator(GuestIo& io) : state_(new State{io}) {}
TcpTranslator::~TcpTranslator() = default;
void TcpTranslator::on_segment(const wire::Ipv4Packet&, const SockAddr&) { state_->io.counters().drop_unsupported++; }
void TcpTranslator::open_inbound(UniqueFd, const SockAddr&, wire::Ipv4Addr, std::uint16_t) {}
nlohmann::json TcpTranslator::status() const { return nlohmann::json::array(); }

}  // namespace vnet::nat
