// Read-only TFTP server (RFC 1350, options RFC 2347/2348/2349) at the
// gateway address, for PXE boot.
#pragma once

#include <memory>

#include "fabric/port.hpp"
#include "nat/guest_io.hpp"

namespace vnet::nat {

class TftpServer {
 public:
  explicit TftpServer(GuestIo& io);
  ~TftpServer();
  TftpServer(const TftpServer&) = delete;
  TftpServer& operator=(const TftpServer&) = delete;

  // A datagram from a guest to the gateway: port 69 starts a transfer, other
  // ports belong to transfers in progress. Returns false if the port is not
  // TFTP's (the datagram then goes to the UDP translator). `port` is the
  // switch port the guest's frame came in on (per-guest transfer cap).
  bool on_datagram(wire::Ipv4Addr guest, std::uint16_t guest_port, std::uint16_t gateway_port, wire::Bytes payload,
                   PortId port = 0);
  static constexpr std::size_t kMaxTransfers = 64;
  static constexpr std::size_t kMaxTransfersPerGuest = 4;
  static constexpr unsigned kMaxTimeoutSeconds = 5;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vnet::nat
