// DNS messages (RFC 1035 4.1), as much as a forwarder needs: the header, the
// question section, and a walk over resource records to find EDNS's OPT
// (RFC 6891) so the forwarder knows how large an answer the guest accepts.
//
// Names may be compressed (RFC 1035 4.1.4). Decompression is the classic
// hostile-input trap, so: the name a pointer refers to must lie wholly
// before the pointer and outside the header (no loops, no forward jumps, no
// names running into later data), jumps are capped, labels are at most 63
// bytes (the 0x40/0x80 label types of RFC 6891/2673 are rejected) and a
// name is at most 255 bytes in wire form.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "wire/bytes.hpp"
#include "wire/error.hpp"

namespace vnet::wire {

// A name in uncompressed wire form (length-prefixed labels, ending in the
// root's zero byte).
struct DnsName {
  static constexpr std::size_t kMaxLen = 255;
  static constexpr std::size_t kMaxLabel = 63;

  std::array<std::uint8_t, kMaxLen> data{};
  std::uint8_t len = 0;

  Bytes wire() const { return {data.data(), len}; }
  // "www.example.com." style; "." for the root.
  std::string to_string() const;
  // Names compare case-insensitively (RFC 4343).
  bool equals(const DnsName& o) const;
};

struct DnsQuestion {
  DnsName name;
  std::uint16_t qtype = 0;
  std::uint16_t qclass = 0;
  bool same_as(const DnsQuestion& o) const { return qtype == o.qtype && qclass == o.qclass && name.equals(o.name); }
};

// Reads the name at msg[off], following compression pointers. On success
// returns the offset just after the name where it started (after the first
// pointer if there was one).
Parsed<std::size_t> read_dns_name(Bytes msg, std::size_t off, DnsName& out) noexcept;

class DnsMessage {
 public:
  static constexpr std::size_t kHeaderLen = 12;
  // Without EDNS a UDP answer must fit 512 bytes (RFC 1035 4.2.1).
  static constexpr std::uint16_t kClassicUdpSize = 512;
  static constexpr std::uint16_t kTypeOpt = 41;

  DnsMessage() = default;
  // Checks the header and that every question parses within the message;
  // the answer/authority/additional sections are not read here.
  static Parsed<DnsMessage> parse(Bytes b) noexcept;
  // parse() plus what a forwarder accepts from a guest: QR clear, opcode
  // QUERY (0), exactly one question.
  static Parsed<DnsMessage> parse_query(Bytes b) noexcept;

  std::uint16_t id() const { return load_be16(buf_, 0); }
  std::uint16_t flags() const { return load_be16(buf_, 2); }
  bool is_response() const { return (buf_[2] & 0x80) != 0; }
  std::uint8_t opcode() const { return (buf_[2] >> 3) & 0x0f; }
  bool truncated() const { return (buf_[2] & 0x02) != 0; }
  std::uint8_t rcode() const { return buf_[3] & 0x0f; }
  std::uint16_t qdcount() const { return load_be16(buf_, 4); }
  std::uint16_t ancount() const { return load_be16(buf_, 6); }
  std::uint16_t nscount() const { return load_be16(buf_, 8); }
  std::uint16_t arcount() const { return load_be16(buf_, 10); }

  // The first question (parse() guaranteed it is well-formed if qdcount > 0).
  Parsed<DnsQuestion> question() const noexcept;
  // Offset of the first byte after the question section.
  std::size_t questions_end() const { return questions_end_; }
  // The requestor's UDP payload size from an OPT record in the additional
  // section, or nullopt without EDNS (or if the records do not parse).
  std::optional<std::uint16_t> edns_udp_size() const noexcept;

  Bytes bytes() const { return buf_; }

 private:
  explicit DnsMessage(Bytes b) : buf_(b) {}
  Bytes buf_;
  std::size_t questions_end_ = 0;
};

// In-place edits of a message a forwarder relays.
inline void dns_set_id(MutBytes msg, std::uint16_t id) { store_be16(msg, 0, id); }

// Writes into out the header and question section of `answer` with TC set
// and no records: the reply that tells a client to retry over TCP
// (RFC 1035 4.2.1, RFC 7766). Returns the length, or 0 if out is too small.
std::size_t dns_truncate(const DnsMessage& answer, MutBytes out) noexcept;

}  // namespace vnet::wire
