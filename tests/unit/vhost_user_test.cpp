// vhost-user: the control messages (one test per way a front end can get
// one wrong) and split virtqueues in memory the "guest" controls: loops,
// addresses outside its memory, indices beyond the ring, buffers of the
// wrong direction are reported broken, never followed.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "ports/virtqueue.hpp"
#include "wire/vhost_user.hpp"

namespace vnet {
namespace {

using namespace wire;

std::vector<std::uint8_t> u64_payload(std::uint64_t v) {
  std::vector<std::uint8_t> p(8);
  std::memcpy(p.data(), &v, 8);
  return p;
}

TEST(WireVhostUser, HeaderRoundTrip) {
  const auto m = emit_vhost_user_message(1, {});
  VhostUserError e{};
  const auto h = parse_vhost_user_header(m, &e);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->request, 1u);
  EXPECT_EQ(h->size, 0u);
}

TEST(WireVhostUser, HeaderTruncated) {
  const auto m = emit_vhost_user_message(1, {});
  VhostUserError e{};
  for (std::size_t len = 0; len < kVhostUserHeaderSize; ++len) {
    EXPECT_FALSE(parse_vhost_user_header(Bytes(m.data(), len), &e));
    EXPECT_EQ(e, VhostUserError::Truncated);
  }
}

TEST(WireVhostUser, WrongVersion) {
  auto m = emit_vhost_user_message(1, {});
  m[4] = 2;
  VhostUserError e{};
  EXPECT_FALSE(parse_vhost_user_header(m, &e));
  EXPECT_EQ(e, VhostUserError::BadVersion);
}

TEST(WireVhostUser, PayloadLargerThanTheLimit) {
  auto m = emit_vhost_user_message(5, {});
  const std::uint32_t size = kVhostUserMaxPayload + 1;
  std::memcpy(m.data() + 8, &size, 4);
  VhostUserError e{};
  EXPECT_FALSE(parse_vhost_user_header(m, &e));
  EXPECT_EQ(e, VhostUserError::TooLong);
}

TEST(WireVhostUser, FixedPayloadsOfTheWrongSize) {
  VhostUserError e{};
  const std::vector<std::uint8_t> seven(7), nine(9), thirty_nine(39);
  EXPECT_FALSE(parse_u64_payload(seven, &e));
  EXPECT_FALSE(parse_u64_payload(nine, &e));
  EXPECT_FALSE(parse_vring_state(seven, &e));
  EXPECT_FALSE(parse_vring_addr(thirty_nine, &e));
  EXPECT_EQ(e, VhostUserError::BadPayload);
  EXPECT_EQ(parse_u64_payload(u64_payload(0x1234), &e), std::optional<std::uint64_t>(0x1234));
}

TEST(WireVhostUser, MemoryTableRoundTrip) {
  const std::vector<MemoryRegion> regions = {{0, 0xa0000, 0x7f0000000000, 0}, {0xc0000, 0x1000, 0x7f00000c0000, 0xc0000}};
  VhostUserError e{};
  const auto parsed = parse_memory_table(emit_memory_table(regions), &e);
  ASSERT_TRUE(parsed) << to_string(e);
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[1].mmap_offset, 0xc0000u);
}

TEST(WireVhostUser, MemoryTableWithMoreRegionsThanPayload) {
  auto p = emit_memory_table({{0, 4096, 0, 0}});
  p[0] = 2;  // claims two regions, carries one
  VhostUserError e{};
  EXPECT_FALSE(parse_memory_table(p, &e));
  EXPECT_EQ(e, VhostUserError::BadPayload);
}

TEST(WireVhostUser, MemoryTableWithTooManyRegions) {
  auto p = emit_memory_table({});
  p[0] = 9;
  VhostUserError e{};
  EXPECT_FALSE(parse_memory_table(p, &e));
  EXPECT_EQ(e, VhostUserError::TooManyRegions);
}

TEST(WireVhostUser, MemoryRegionsEmptyOrWrappingAround) {
  VhostUserError e{};
  EXPECT_FALSE(parse_memory_table(emit_memory_table({{0, 0, 0, 0}}), &e));
  EXPECT_EQ(e, VhostUserError::BadRegion);
  EXPECT_FALSE(parse_memory_table(emit_memory_table({{~0ull - 10, 4096, 0, 0}}), &e));
  EXPECT_FALSE(parse_memory_table(emit_memory_table({{0, 4096, ~0ull - 10, 0}}), &e));
  EXPECT_FALSE(parse_memory_table(emit_memory_table({{0, 4096, 0, ~0ull - 10}}), &e));
  EXPECT_EQ(e, VhostUserError::BadRegion);
}

TEST(WireVhostUser, Replies) {
  const auto r = emit_vring_state_reply(11, {1, 77});
  ASSERT_EQ(r.size(), kVhostUserHeaderSize + 8);
  std::uint32_t flags, num;
  std::memcpy(&flags, r.data() + 4, 4);
  std::memcpy(&num, r.data() + 16, 4);
  EXPECT_EQ(flags, kVhostUserVersion | kVhostUserFlagReply);
  EXPECT_EQ(num, 77u);
}

// One page of "guest memory" from a memfd, guest-physical address 0x10000,
// front-end address 0x7000000: a ring of 8 entries at its start, data after.
class VirtqueueTest : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kGpa = 0x10000, kUaddr = 0x7000000, kSize = 8192;
  static constexpr std::uint32_t kNum = 8;
  GuestMemory memory;
  std::uint8_t* base = nullptr;  // our own view, to play the guest
  void* view = nullptr;
  Virtqueue ring;

  void SetUp() override {
    UniqueFd fd(::memfd_create("guest", MFD_CLOEXEC));
    ASSERT_EQ(::ftruncate(fd.get(), kSize), 0);
    view = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    base = static_cast<std::uint8_t*>(view);
    std::vector<UniqueFd> fds;
    fds.push_back(std::move(fd));
    memory.map({{kGpa, kSize, kUaddr, 0}}, fds);
    ASSERT_TRUE(ring.set_size(kNum));
    ring.set_addresses({0, 0, kUaddr + 0, kUaddr + 512, kUaddr + 256, 0});
    ASSERT_TRUE(ring.map(memory));
  }
  void TearDown() override { ::munmap(view, kSize); }

  void desc(std::uint16_t i, std::uint64_t gpa, std::uint32_t len, std::uint16_t flags, std::uint16_t next = 0) {
    std::uint8_t* d = base + 16 * i;
    std::memcpy(d, &gpa, 8);
    std::memcpy(d + 8, &len, 4);
    std::memcpy(d + 12, &flags, 2);
    std::memcpy(d + 14, &next, 2);
  }
  void make_available(std::uint16_t slot, std::uint16_t head, std::uint16_t new_idx) {
    std::memcpy(base + 256 + 4 + 2 * slot, &head, 2);
    std::memcpy(base + 256 + 2, &new_idx, 2);
  }
  std::uint16_t used_idx() const {
    std::uint16_t v;
    std::memcpy(&v, base + 512 + 2, 2);
    return v;
  }
};

TEST_F(VirtqueueTest, SizesMustBePowersOfTwo) {
  Virtqueue q;
  EXPECT_FALSE(q.set_size(0));
  EXPECT_FALSE(q.set_size(3));
  EXPECT_FALSE(q.set_size(65536));
  EXPECT_TRUE(q.set_size(32768));
}

TEST_F(VirtqueueTest, RingsOutsideTheMemoryAreRefused) {
  Virtqueue q;
  ASSERT_TRUE(q.set_size(kNum));
  q.set_addresses({0, 0, kUaddr + kSize - 16, kUaddr + 512, kUaddr + 256, 0});
  EXPECT_FALSE(q.map(memory));
  q.set_addresses({0, 0, kUaddr, kUaddr + 513, kUaddr + 256, 0});  // misaligned used ring
  EXPECT_FALSE(q.map(memory));
}

TEST_F(VirtqueueTest, AChainOfTwoSegmentsIsReadAndReturned) {
  desc(0, kGpa + 1024, 100, 1 /*next*/, 1);
  desc(1, kGpa + 2048, 50, 0);
  make_available(0, 0, 1);
  DescriptorChain chain;
  ASSERT_EQ(ring.pop(memory, chain, false), Virtqueue::Pop::Ok);
  EXPECT_EQ(chain.count, 2u);
  EXPECT_EQ(chain.bytes, 150u);
  base[2048] = 0x5a;  // the segment is the guest's byte at 0x10800, in vnet's own mapping
  EXPECT_EQ(chain.segments[1].data[0], 0x5a);
  EXPECT_EQ(ring.pop(memory, chain, false), Virtqueue::Pop::Empty);
  ring.push_used(chain.head, 0);
  ring.publish();
  EXPECT_EQ(used_idx(), 1u);
}

TEST_F(VirtqueueTest, ALoopingChainIsBroken) {
  desc(0, kGpa + 1024, 10, 1, 1);
  desc(1, kGpa + 1024, 10, 1, 0);
  make_available(0, 0, 1);
  DescriptorChain chain;
  EXPECT_EQ(ring.pop(memory, chain, false), Virtqueue::Pop::Broken);
}

TEST_F(VirtqueueTest, BufferOutsideTheMemoryIsBroken) {
  desc(0, kGpa + kSize - 10, 11, 0);
  make_available(0, 0, 1);
  DescriptorChain chain;
  EXPECT_EQ(ring.pop(memory, chain, false), Virtqueue::Pop::Broken);
}

TEST_F(VirtqueueTest, HeadOrNextBeyondTheRingIsBroken) {
  make_available(0, kNum, 1);
  DescriptorChain chain;
  EXPECT_EQ(ring.pop(memory, chain, false), Virtqueue::Pop::Broken);
  desc(0, kGpa + 1024, 10, 1, kNum);
  make_available(1, 0, 2);
  EXPECT_EQ(ring.pop(memory, chain, false), Virtqueue::Pop::Broken);
}

TEST_F(VirtqueueTest, MoreAvailableThanTheRingHoldsIsBroken) {
  make_available(0, 0, kNum + 1);
  DescriptorChain chain;
  EXPECT_EQ(ring.pop(memory, chain, false), Virtqueue::Pop::Broken);
}

TEST_F(VirtqueueTest, BufferOfTheWrongDirectionIsBroken) {
  desc(0, kGpa + 1024, 10, 0);  // device-readable, offered where the device must write
  make_available(0, 0, 1);
  DescriptorChain chain;
  EXPECT_EQ(ring.pop(memory, chain, true), Virtqueue::Pop::Broken);
}

TEST_F(VirtqueueTest, IndirectDescriptorsAreNotFollowed) {
  desc(0, kGpa + 1024, 16, 4 /*indirect*/);
  make_available(0, 0, 1);
  DescriptorChain chain;
  EXPECT_EQ(ring.pop(memory, chain, false), Virtqueue::Pop::Broken);
}

TEST_F(VirtqueueTest, UnpopGivesBuffersBackUnseen) {
  desc(0, kGpa + 1024, 100, 2 /*write*/);
  make_available(0, 0, 1);
  DescriptorChain chain;
  ASSERT_EQ(ring.pop(memory, chain, true), Virtqueue::Pop::Ok);
  ring.unpop(1);
  ASSERT_EQ(ring.pop(memory, chain, true), Virtqueue::Pop::Ok);
  EXPECT_EQ(used_idx(), 0u);
}

}  // namespace
}  // namespace vnet
