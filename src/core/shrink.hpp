// Tables that grow with the number of flows (fd handlers, timers, queues of
// flow keys) must give their memory back after a burst of flows has closed.
#pragma once

#include <cstddef>
#include <vector>

namespace vnet {

// Shrinks `v` once it uses under a quarter of its capacity: a quarter,
// against growth by doubling, so that a table hovering at one size is not
// reallocated back and forth. Small tables are left alone.
template <class T>
void shrink_if_sparse(std::vector<T>& v, std::size_t keep = 64) {
  if (v.capacity() > keep && v.size() < v.capacity() / 4) v.shrink_to_fit();
}

}  // namespace vnet
