#include "core/datagram_batch.hpp"

namespace vnet {

DatagramBatch::DatagramBatch(std::size_t max_datagram)
    : max_(max_datagram), buffers_(new std::uint8_t[max_datagram * kSize]), msgs_(kSize), iovs_(kSize), sources_(kSize) {}

void DatagramBatch::point(int i, std::uint8_t* data, std::size_t len, void* name, socklen_t name_len) {
  const auto k = static_cast<std::size_t>(i);
  iovs_[k] = {data, len};
  msgs_[k].msg_hdr = {};
  msgs_[k].msg_hdr.msg_iov = &iovs_[k];
  msgs_[k].msg_hdr.msg_iovlen = 1;
  msgs_[k].msg_hdr.msg_name = name;
  msgs_[k].msg_hdr.msg_namelen = name_len;
}

int DatagramBatch::receive(int fd) {
  for (int i = 0; i < kSize; ++i)
    point(i, buffers_.get() + static_cast<std::size_t>(i) * max_, max_, &sources_[static_cast<std::size_t>(i)],
          sizeof(sockaddr_storage));
  const int n = ::recvmmsg(fd, msgs_.data(), kSize, MSG_DONTWAIT, nullptr);
  return n < 0 ? 0 : n;
}

bool DatagramBatch::add(wire::Bytes datagram, const sockaddr* to, socklen_t to_len) {
  point(out_, const_cast<std::uint8_t*>(datagram.data()), datagram.size(), const_cast<sockaddr*>(to), to ? to_len : 0);
  return ++out_ < kSize;
}

int DatagramBatch::send(int fd) { return ::sendmmsg(fd, msgs_.data(), static_cast<unsigned>(out_), MSG_DONTWAIT); }

}  // namespace vnet
