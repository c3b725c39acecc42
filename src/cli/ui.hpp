// `vnet ui`: a live topology page in the browser, served on loopback by the
// CLI process (not the engine: the engine gains no listener and no HTTP
// parser), which relays each page request to the engine's control socket.
//
// Anyone on the machine can connect to a loopback port, so every request
// must carry the random token printed at start (in the page URL, then in an
// X-Vnet-Token header, which a page from another origin cannot send without
// the browser asking first), and a Host header naming the loopback address
// (a DNS-rebound name is refused). The page can do what its user could do
// with the CLI: read status, set a port's link, add and remove forwards.
#pragma once

#include <string>

namespace vnet::cli {

extern const char* const kUiPage;

struct UiOptions {
  std::string run_dir;
  std::string listen = "127.0.0.1:0";  // port 0: the kernel picks one
};

// Serves until SIGINT/SIGTERM; returns the exit code.
int run_ui(const UiOptions& options);

}  // namespace vnet::cli
