#include "nat/dns.hpp"

#include <nlohmann/json.hpp>

namespace vnet::nat {

struct DnsForwarder::State {
  GuestIo& io;
};

DnsForwarder::DnsForwarder(GuestIo& io) : state_(new State{io}) {}
DnsForwarder::~DnsForwarder() = default;
void DnsForwarder::on_query(wire::Ipv4Addr, std::uint16_t, wire::Bytes) {}
std::optional<SockAddr> DnsForwarder::tcp_upstream() const { return std::nullopt; }
nlohmann::json DnsForwarder::status() const { return nlohmann::json::object(); }

}  // namespace vnet::nat
