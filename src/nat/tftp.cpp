#include "nat/tftp.hpp"

namespace vnet::nat {

struct TftpServer::State {
  GuestIo& io;
};

TftpServer::TftpServer(GuestIo& io) : state_(new State{io}) {}
TftpServer::~TftpServer() = default;
bool TftpServer::on_datagram(wire::Ipv4Addr, std::uint16_t, std::uint16_t, wire::Bytes) { return false; }

}  // namespace vnet::nat
