#include "ports/pcap.hpp"

#include <fcntl.h>

#include <cstring>

#include "core/error.hpp"
#include "core/log.hpp"
#include "fabric/network.hpp"
#include "privsep/helper.hpp"

namespace vnet {
namespace {

constexpr std::uint32_t kPcapMagicMicros = 0xa1b2c3d4;
constexpr std::uint32_t kLinkTypeEthernet = 1;

// pcap headers are in the writer's byte order; readers detect it by the magic.
struct PcapFileHeader {
  std::uint32_t magic;
  std::uint16_t version_major, version_minor;
  std::int32_t thiszone;
  std::uint32_t sigfigs, snaplen, linktype;
};
struct PcapRecordHeader {
  std::uint32_t ts_sec, ts_usec, incl_len, orig_len;
};

}  // namespace

PcapPort::PcapPort(EventLoop& loop, Network& net, PortId id, const std::string& path)
    : FdPort(loop, net, id, 8 << 20), label_(path) {
  UniqueFd fd(path == "-" ? ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0)
                          : ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  // A directory only root may write: the privileged helper creates the file
  // if its rules allow (privsep/helper.hpp).
  if (!fd && path != "-" && (errno == EACCES || errno == EPERM) && privsep::broker())
    fd = privsep::broker()->create_file(path);
  if (!fd) throw UserError(errno_text("cannot write capture file " + path));
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
  attach(std::move(fd));
  // Regular files never report EPOLLIN; a pipe's read end closing shows as EPOLLERR.
  write_file_header();
}

PcapPort::PcapPort(EventLoop& loop, Network& net, PortId id, UniqueFd fd, std::string label)
    : FdPort(loop, net, id, 8 << 20), label_(std::move(label)), is_live_(true) {
  attach(std::move(fd));
  write_file_header();
}

void PcapPort::write_file_header() {
  PcapFileHeader h{kPcapMagicMicros, 2, 4, 0, 0, kSnapLen, kLinkTypeEthernet};
  out_.push({reinterpret_cast<const std::uint8_t*>(&h), sizeof h});
  flush();
}

void PcapPort::send_to_peer(wire::Bytes frame) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  const auto incl = static_cast<std::uint32_t>(std::min<std::size_t>(frame.size(), kSnapLen));
  PcapRecordHeader h{static_cast<std::uint32_t>(ts.tv_sec), static_cast<std::uint32_t>(ts.tv_nsec / 1000), incl,
                     static_cast<std::uint32_t>(frame.size())};
  queue_out({reinterpret_cast<const std::uint8_t*>(&h), sizeof h}, frame.first(incl));
}

void PcapPort::on_readable() {
  // A live reader sends nothing; readable means it hung up.
  char scratch[256];
  ssize_t n = ::read(fd(), scratch, sizeof scratch);
  if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) return;
  log::info("{}: capture port {} reader gone", net_.name(), id());
  detach();
  close_later();
}

bool PcapPort::write_queued() {
  if (write_stream_records(fd(), out_, out_partial_)) return true;
  log::warn("{}: capture port {}: {}", net_.name(), id(), std::strerror(errno));
  detach();
  if (is_live_) close_later();
  return false;
}

}  // namespace vnet
