// Levenshtein distance, for "did you mean" suggestions on mistyped command
// names and config keys. Both are short, so the quadratic table is fine.
#pragma once

#include <cstddef>
#include <string_view>

namespace vnet {

std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace vnet
