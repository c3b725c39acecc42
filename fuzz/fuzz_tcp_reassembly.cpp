// TcpReassembly fed a hostile guest's segments: overlapping, repeated,
// behind rcv_nxt, beyond the window, across the sequence wrap, with FINs
// anywhere. Every segment carries the bytes a fixed stream has at its
// sequence numbers, so whatever is taken back must match that stream.
// Input: records of 6 bytes: [op][offset hi][offset lo][len hi][len lo][flags].
//   op % 4 == 0..2: insert `len` bytes at rcv_nxt + (signed) offset (flags bit 0: FIN)
//   op % 4 == 3: take what continues the stream, as the translator does.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_sink.hpp"
#include "nat/tcp_reassembly.hpp"

using namespace vnet;
using vnet::fuzz::check;
using vnet::fuzz::sink;

namespace {

std::uint8_t stream_byte(std::uint32_t seq) { return static_cast<std::uint8_t>(seq * 131u + (seq >> 9) + 7u); }

bool seq_lt(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) < 0; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nat::TcpReassembly::Budget budget{64 << 10};
  {
    nat::TcpReassembly q{budget, 16 << 10};
    std::uint32_t rcv_nxt = size > 0 ? 0xfffff000u + data[0] * 16u : 0;  // wraps within a few records
    const std::uint32_t window = 20000;
    std::vector<std::uint8_t> seg(4096);
    int records = 0;
    for (std::size_t at = 1; at + 6 <= size && records++ < 512; at += 6) {
      const std::uint8_t op = data[at];
      const auto offset = static_cast<std::int16_t>((data[at + 1] << 8) | data[at + 2]);
      const std::size_t len = ((data[at + 3] << 8) | data[at + 4]) % seg.size();
      if (op % 4 == 3) {
        for (wire::Bytes b = q.contiguous(rcv_nxt); !b.empty(); b = q.contiguous(rcv_nxt)) {
          for (std::size_t i = 0; i < b.size(); ++i) check(b[i] == stream_byte(rcv_nxt + static_cast<std::uint32_t>(i)));
          rcv_nxt += static_cast<std::uint32_t>(b.size());
          q.advance(rcv_nxt);
        }
        if (q.fin_at(rcv_nxt)) rcv_nxt++;  // the translator takes the FIN
        q.advance(rcv_nxt);
        continue;
      }
      const std::uint32_t seq = rcv_nxt + static_cast<std::uint32_t>(static_cast<std::int32_t>(offset));
      for (std::size_t i = 0; i < len; ++i) seg[i] = stream_byte(seq + static_cast<std::uint32_t>(i));
      q.insert(rcv_nxt, window, seq, wire::Bytes(seg.data(), len), data[at + 5] & 1);
      check(q.bytes() <= (16u << 10));
      check(q.segments() <= nat::TcpReassembly::kMaxSegments);
      check(budget.used <= budget.limit + (16u << 10));  // a join may grow one block's allocation
      wire::TcpSackBlock blocks[4];
      const std::size_t n = q.sack_blocks(rcv_nxt, blocks);
      check(n <= 4);
      for (std::size_t i = 0; i < n; ++i) {
        check(seq_lt(rcv_nxt, blocks[i].left) || blocks[i].left == rcv_nxt);
        check(seq_lt(blocks[i].left, blocks[i].right));
        check(!seq_lt(rcv_nxt + window, blocks[i].right));
      }
      sink(n);
    }
  }
  check(budget.used == 0);
  return 0;
}
