// A port that records the frames the network hands it and can inject frames
// as if its peer had sent them: the far side of a transport under test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fabric/port.hpp"

namespace vnet::test_support {

class RecordingPort : public Port {
 public:
  using Port::Port;
  std::string kind() const override { return "test"; }
  void inject(const std::vector<std::uint8_t>& f) { from_peer(f); }
  std::vector<std::vector<std::uint8_t>> sent;

 protected:
  void send_to_peer(wire::Bytes f) override {
    counters_.tx_frames++;
    sent.emplace_back(f.begin(), f.end());
  }
};

}  // namespace vnet::test_support
