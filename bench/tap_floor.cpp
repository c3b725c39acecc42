// tap_floor: the least a user-space program must do to join two TAP
// devices, as a reference point for switch_bench.py.
//
// It opens a TAP named IFNAME in each of two network namespaces with the
// same flags and offloads as vnet's TAP ports, then copies every frame read
// from one to the other: one read and one write per frame, no parsing, no
// learning, no counters, no queue. For large frames a switch built on TAP
// devices can come close to this figure but not beat it (small frames are
// another matter: a switch that writes a round's burst after its reads
// hands the receiving stack several at once). switch_bench shows vnet
// against it beside the veth pair: what is left between vnet and this
// floor is vnet's own cost, what is left between this floor and veth is
// the cost of the TAP interface (two copies and two system calls per frame).
//
// usage: tap_floor NETNS_A NETNS_B [IFNAME]   (runs until SIGTERM or SIGINT)

#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "privsep/tap_open.hpp"

namespace {

volatile std::sig_atomic_t stop_requested = 0;

void request_stop(int) { stop_requested = 1; }

// Reads what `from` holds, up to a bounded number of frames so that the
// other direction gets its turn, and writes each frame to `to`. A frame
// the other side refuses (its queue is full) is dropped, as a switch would.
void forward_burst(int from, int to, std::vector<unsigned char>& buffer) {
  constexpr int kFramesPerTurn = 64;
  for (int i = 0; i < kFramesPerTurn; ++i) {
    const ssize_t n = ::read(from, buffer.data(), buffer.size());
    if (n <= 0) return;  // EAGAIN: drained
    (void)::write(to, buffer.data(), static_cast<std::size_t>(n));
  }
}

int run(const std::string& netns_a, const std::string& netns_b, const std::string& ifname) {
  vnet::UniqueFd tap_a = vnet::privsep::open_tap_device(ifname, netns_a);
  vnet::UniqueFd tap_b = vnet::privsep::open_tap_device(ifname, netns_b);
  vnet::UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll) throw vnet::UserError(vnet::errno_text("epoll_create1"));
  for (int fd : {tap_a.get(), tap_b.get()}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0) throw vnet::UserError(vnet::errno_text("epoll_ctl"));
  }
  std::signal(SIGTERM, request_stop);
  std::signal(SIGINT, request_stop);
  std::vector<unsigned char> buffer(65536 + 64);  // a 64 KiB TSO frame and its header
  std::array<epoll_event, 2> events{};
  std::printf("tap_floor: forwarding between %s in %s and %s\n", ifname.c_str(), netns_a.c_str(), netns_b.c_str());
  std::fflush(stdout);
  while (!stop_requested) {
    const int n = ::epoll_wait(epoll.get(), events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno != EINTR) throw vnet::UserError(vnet::errno_text("epoll_wait"));
    for (int i = 0; i < n; ++i) {
      const bool from_a = events[static_cast<std::size_t>(i)].data.fd == tap_a.get();
      forward_burst(from_a ? tap_a.get() : tap_b.get(), from_a ? tap_b.get() : tap_a.get(), buffer);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: %s NETNS_A NETNS_B [IFNAME]\n", argv[0]);
    return 2;
  }
  try {
    return run(argv[1], argv[2], argc == 4 ? argv[3] : "eth0");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tap_floor: %s\n", e.what());
    return 1;
  }
}
