#include <cstddef>
#include <cstdint>
#include <string_view>

#include "control/config.hpp"
#include "core/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    vnet::parse_config(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.toml");
  } catch (const vnet::UserError&) {
  }
  return 0;
}
