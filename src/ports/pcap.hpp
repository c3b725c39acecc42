// A capture port: records every frame the network carries in the classic
// pcap format (what tcpdump -r and wireshark read), to a file, to the
// engine's stdout, or live to a `vnet capture` client.
//
// The format is written here rather than through libpcap's dumper because
// the dumper writes through blocking stdio, and a live capture reader that
// stalls must cost the network nothing: records go through the port's
// bounded queue and a stalled reader loses frames (counted), nothing else.
#pragma once

#include <string>

#include "ports/fd_port.hpp"

namespace vnet {

class PcapPort : public FdPort {
 public:
  static constexpr std::uint32_t kSnapLen = 65535;

  // Writes to path ("-" for the engine's stdout).
  PcapPort(EventLoop& loop, Network& net, PortId id, const std::string& path);
  // Writes to an already open stream (a control connection).
  PcapPort(EventLoop& loop, Network& net, PortId id, UniqueFd fd, std::string label);

  std::string kind() const override { return "pcap"; }
  std::string peer() const override { return label_; }
  bool is_mirror() const override { return true; }

 protected:
  void on_readable() override;
  bool write_queued() override;
  void send_to_peer(wire::Bytes frame) override;

 private:
  void write_file_header();

  std::string label_;
  std::size_t out_partial_ = 0;
  bool is_live_ = false;
};

}  // namespace vnet
