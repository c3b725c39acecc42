// A saved state file is read back at start-up: whatever a crash, a full disk
// or a hand edit left in it, parsing must stay in bounds and either accept a
// well-formed state or name the line; leases read from an accepted file must
// never put the DHCP server over its limits.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "control/state.hpp"
#include "fuzz_sink.hpp"
#include "nat/dhcp.hpp"
#include "support/fake_guest_io.hpp"

using vnet::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::string problem;
  auto state = vnet::parse_state("state.json", text, problem);
  check(state.has_value() == problem.empty());
  if (!state) {
    check(problem.rfind("state.json:", 0) == 0);
    return 0;
  }
  check(state->at("definitions").is_array());
  if (auto leases = state->find("leases"); leases != state->end()) {
    vnet::nat::testing::FakeGuestIo io;
    io.record = false;
    vnet::nat::DhcpServer dhcp(io);
    for (const auto& [net, list] : leases->items()) {
      const std::size_t n = dhcp.import_leases(list);
      check(n <= io.config().max_leases);
      check(dhcp.export_leases().size() == n);
    }
  }
  return 0;
}
