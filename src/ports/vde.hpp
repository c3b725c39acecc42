// VDE (vde2's Virtual Distributed Ethernet), both roles:
//
//  - `vde,dir=DIR`: the network is a VDE switch. vnet creates DIR (0700, or
//    02770 for the --group), listens on DIR/ctl, and answers each plug's
//    handshake (wire/vde.hpp) with a datagram socket of its own, DIR/NNN,
//    connected to the plug's. QEMU's `-netdev vde,sock=DIR`, vde_plug and
//    vde_plug2tap attach exactly as to `vde_switch -s DIR`. Each plug is a
//    port of its own (kind "vde", child of the switch port) with counters and
//    MAC learning; closing its control connection unplugs it.
//  - `vde,connect=DIR`: vnet is a plug in an existing vde_switch (kind
//    "vde-plug"), and reconnects with backoff when the switch goes away.
//
// A plug names its own datagram socket; vnet connects there only if that is
// a socket (not a symlink) owned by the plug's user (SO_PEERCRED) or the plug
// runs as root, and connects through the inode it checked, so a plug cannot
// make vnet send frames to another user's socket.
#pragma once

#include <sys/socket.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/log.hpp"
#include "ports/factory.hpp"
#include "core/datagram_batch.hpp"
#include "ports/fd_port.hpp"

namespace vnet {

// Frames over a connected datagram socket, read and written in batches.
class VdeDataPort : public FdPort {
 public:
  VdeDataPort(EventLoop& loop, Network& net, PortId id);

 protected:
  void on_readable() override;
  bool write_queued() override;
  void send_to_peer(wire::Bytes frame) override;

 private:
  DatagramBatch batch_;
};

// One plug attached to vnet's switch.
class VdeConnectionPort : public VdeDataPort {
 public:
  VdeConnectionPort(EventLoop& loop, Network& net, PortId id, UniqueFd control, UniqueFd data,
                    std::string data_path, std::string peer);
  ~VdeConnectionPort() override;

  std::string kind() const override { return "vde"; }
  std::string peer() const override { return peer_; }

 private:
  void on_control();

  UniqueFd control_;
  std::string data_path_;
  std::string peer_;
};

class VdeSwitchPort : public Port {
 public:
  static constexpr std::size_t kMaxPending = 32;
  static constexpr Nanos kHandshakeTimeout = 5 * kSeconds;

  VdeSwitchPort(EventLoop& loop, Network& net, PortId id, std::string dir, SocketAccess access);
  ~VdeSwitchPort() override;

  std::string kind() const override { return "vde-switch"; }
  std::string peer() const override { return dir_; }
  std::string state() const override { return "listening"; }
  bool carries_frames() const override { return false; }

 protected:
  void send_to_peer(wire::Bytes) override {}

 private:
  struct Pending {
    UniqueFd fd;
    ucred cred{};
    Nanos deadline = 0;
    std::size_t used = 0;
    std::uint8_t buffer[256 + 1];
  };

  void prepare_dir();
  void accept_all();
  void on_pending(int fd);
  void close_pending(int fd, const std::string& why);
  void expire_pending();
  // Answers a complete request: returns the new port's id, or throws UserError.
  void attach_plug(Pending& pending);

  std::string dir_;
  std::string ctl_path_;
  SocketAccess access_;
  bool created_dir_ = false;
  UniqueFd listen_fd_;
  std::map<int, std::unique_ptr<Pending>> pending_;
  Timer expiry_;
  log::RateLimited log_{20, 10 * kSeconds};
};

class VdePlugPort : public VdeDataPort {
 public:
  VdePlugPort(EventLoop& loop, Network& net, PortId id, std::string switch_dir);
  ~VdePlugPort() override;

  std::string kind() const override { return "vde-plug"; }
  std::string peer() const override { return dir_; }
  std::string state() const override { return state_; }

 protected:
  void send_to_peer(wire::Bytes frame) override;

 private:
  // Throws UserError naming what failed.
  void plug_in();
  void lost(const std::string& why);
  void on_control();

  std::string dir_;
  UniqueFd control_;
  std::string state_ = "connecting";
  Nanos backoff_ = 0;
  Timer retry_;
};

}  // namespace vnet
