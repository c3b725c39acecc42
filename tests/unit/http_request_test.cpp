// The request parser of `vnet ui`: one test per way a request can be wrong,
// and the pieces of a good one.
#include "control/http_request.hpp"

#include <gtest/gtest.h>

#include <string>

namespace vnet {
namespace {

using Status = HttpRequest::Status;

TEST(HttpRequest, GetWithQueryAndHeaders) {
  const auto r = parse_http_request("GET /api/status?token=ab12 HTTP/1.1\r\nHost: 127.0.0.1:8090\r\n"
                                    "x-vnet-token:  cafe \r\n\r\n");
  ASSERT_EQ(r.status, Status::Complete);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/api/status");
  EXPECT_EQ(query_value(r.query, "token"), "ab12");
  EXPECT_EQ(r.host, "127.0.0.1:8090");
  EXPECT_EQ(r.token, "cafe") << "header names are case-insensitive, values trimmed";
}

TEST(HttpRequest, PostWaitsForItsWholeBody) {
  const std::string head = "POST /api/port HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n";
  EXPECT_EQ(parse_http_request(head).status, Status::NeedMore);
  EXPECT_EQ(parse_http_request(head + "{\"a\":").status, Status::NeedMore);
  const auto r = parse_http_request(head + "{\"a\":\"b\"}}");
  ASSERT_EQ(r.status, Status::Complete);
  EXPECT_EQ(r.body, "{\"a\":\"b\"}}");
}

TEST(HttpRequest, IncompleteHeadNeedsMore) {
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nHost: h\r\n").status, Status::NeedMore);
}

TEST(HttpRequest, OversizedHeadIsBad) {
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nX: " + std::string(HttpRequest::kMaxHead, 'a')).status, Status::Bad);
}

TEST(HttpRequest, MalformedRequestLineIsBad) {
  EXPECT_EQ(parse_http_request("GARBAGE\r\n\r\n").status, Status::Bad);
  EXPECT_EQ(parse_http_request("GET nopath HTTP/1.1\r\n\r\n").status, Status::Bad);
  EXPECT_EQ(parse_http_request("GET / HTTP/2\r\n\r\n").status, Status::Bad);
}

TEST(HttpRequest, HeaderWithoutColonIsBad) {
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nno colon here\r\n\r\n").status, Status::Bad);
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\n: empty name\r\n\r\n").status, Status::Bad);
}

TEST(HttpRequest, BadOrRepeatedOrHugeContentLengthIsBad) {
  EXPECT_EQ(parse_http_request("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n").status, Status::Bad);
  EXPECT_EQ(parse_http_request("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n").status, Status::Bad);
  EXPECT_EQ(parse_http_request("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx").status,
            Status::Bad);
  EXPECT_EQ(parse_http_request("POST / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n").status, Status::Bad);
}

TEST(HttpRequest, ChunkedBodiesAreRefused) {
  EXPECT_EQ(parse_http_request("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").status, Status::Bad);
}

TEST(HttpRequest, BytesBeyondTheBodyAreBad) {
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n").status, Status::Bad);
}

TEST(HttpRequest, QueryValues) {
  EXPECT_EQ(query_value("a=1&token=xyz&b=2", "token"), "xyz");
  EXPECT_EQ(query_value("tokens=1", "token"), std::nullopt);
  EXPECT_EQ(query_value("", "token"), std::nullopt);
  EXPECT_EQ(query_value("token", "token"), std::nullopt);
}

}  // namespace
}  // namespace vnet
