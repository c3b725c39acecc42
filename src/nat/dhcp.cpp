#include "nat/dhcp.hpp"

#include <nlohmann/json.hpp>

namespace vnet::nat {

struct DhcpServer::State {
  GuestIo& io;
};

DhcpServer::DhcpServer(GuestIo& io) : state_(new State{io}) {}
DhcpServer::~DhcpServer() = default;
void DhcpServer::on_message(const wire::MacAddr&, wire::Bytes) {}
void DhcpServer::reserve(const wire::MacAddr&, wire::Ipv4Addr) {}
std::optional<wire::Ipv4Addr> DhcpServer::lease_of(const wire::MacAddr&) const { return std::nullopt; }
nlohmann::json DhcpServer::status() const { return nlohmann::json::array(); }

}  // namespace vnet::nat
