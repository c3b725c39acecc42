// Prometheus text from a status snapshot, and the metrics listener's HTTP
// request handling (one test per malformed request).
#include "control/metrics.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace vnet {
namespace {

using nlohmann::json;

TEST(Metrics, RendersPortsNatFlowsLeasesAndForwards) {
  const json status = json::parse(R"({
    "networks": [{"name": "lab\"1", "macs": [{}, {}], "macs_truncated": 3, "ports": [
      {"id": 2, "kind": "tap", "link": "up",
       "counters": {"rx_frames": 5, "rx_bytes": 500, "tx_frames": 7, "tx_bytes": 700, "drop_overflow": 1,
                    "mac_limit": 2, "imp_lost": 4}}],
      "nat": {"counters": {"tcp_flows": 9, "udp_flows": 1, "drop_spoofed": 3, "dhcp_acks": 2},
              "tcp": [{}, {}], "udp": [{}],
              "leases": [{"state": "bound"}, {"state": "offered"}],
              "forwards": [{"name": "tcp-2222", "proto": "tcp", "connections": 6},
                           {"name": "u", "proto": "udp", "datagrams": 8}],
              "flows": {"sndbuf_in_use": 4096}}}],
    "host": {"control_refused": 1, "control_over_cap": 0}})");
  const std::string text = render_metrics(status);
  for (const char* line : {
           "# TYPE vnet_port_rx_frames_total counter\n",
           "vnet_port_rx_frames_total{network=\"lab\\\"1\",port=\"2\",kind=\"tap\"} 5\n",
           "vnet_port_tx_bytes_total{network=\"lab\\\"1\",port=\"2\",kind=\"tap\"} 700\n",
           "vnet_port_drops_total{network=\"lab\\\"1\",port=\"2\",kind=\"tap\",cause=\"overflow\"} 1\n",
           "vnet_port_drops_total{network=\"lab\\\"1\",port=\"2\",kind=\"tap\",cause=\"mac_limit\"} 2\n",
           "vnet_port_impairment_frames_total{network=\"lab\\\"1\",port=\"2\",kind=\"tap\",effect=\"lost\"} 4\n",
           "vnet_network_macs{network=\"lab\\\"1\"} 5\n",
           "vnet_nat_flows{network=\"lab\\\"1\",proto=\"tcp\"} 2\n",
           "vnet_nat_flows_created_total{network=\"lab\\\"1\",proto=\"tcp\"} 9\n",
           "vnet_nat_drops_total{network=\"lab\\\"1\",cause=\"spoofed\"} 3\n",
           "vnet_nat_events_total{network=\"lab\\\"1\",event=\"dhcp_acks\"} 2\n",
           "vnet_nat_leases{network=\"lab\\\"1\",state=\"bound\"} 1\n",
           "vnet_nat_leases{network=\"lab\\\"1\",state=\"declined\"} 0\n",
           "vnet_nat_forward_connections_total{network=\"lab\\\"1\",forward=\"tcp-2222\",proto=\"tcp\"} 6\n",
           "vnet_nat_forward_connections_total{network=\"lab\\\"1\",forward=\"u\",proto=\"udp\"} 8\n",
           "vnet_nat_sndbuf_bytes{network=\"lab\\\"1\"} 4096\n",
           "vnet_control_connections_total{result=\"refused\"} 1\n",
       })
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  EXPECT_EQ(render_metrics(json::object()).find("vnet_port"), std::string::npos) << "no ports, no port samples";
}

std::string status_of(std::string_view request) {
  const std::string r = http_response(request, [] { return std::string("m 1\n"); });
  return r.substr(0, r.find("\r\n"));
}

TEST(MetricsHttp, ServesGetAndHeadOfMetricsOnly) {
  EXPECT_EQ(status_of("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.1 200 OK");
  const std::string get = http_response("GET /metrics?name[]=x HTTP/1.0\r\n\r\n", [] { return std::string("m 1\n"); });
  EXPECT_NE(get.find("Content-Length: 4\r\n"), std::string::npos);
  EXPECT_EQ(get.substr(get.size() - 4), "m 1\n");
  const std::string head = http_response("HEAD /metrics HTTP/1.1\r\n\r\n", [] { return std::string("m 1\n"); });
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n") << "HEAD: headers only";
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 Not Found");
  EXPECT_EQ(status_of("POST /metrics HTTP/1.1\r\n\r\n"), "HTTP/1.1 405 Method Not Allowed");
}

TEST(MetricsHttp, MalformedRequestLinesAreBadRequests) {
  for (std::string_view bad : {
           std::string_view(""),                               // nothing
           std::string_view("GET /metrics HTTP/1.1"),          // no CRLF
           std::string_view("GET /metrics\r\n\r\n"),           // HTTP/0.9
           std::string_view("GET  /metrics HTTP/1.1\r\n\r\n"), // empty target
           std::string_view("GET /metrics HTTP/2\r\n\r\n"),    // unknown version
           std::string_view("GET metrics HTTP/1.1\r\n\r\n"),   // not an absolute path
           std::string_view("GET /metrics HTTP/1.1 x\r\n\r\n"),
           std::string_view("GET /met\x01rics HTTP/1.1\r\n\r\n"),
           std::string_view("GETTTTTTTTTTTTTTTTTTTTTT /metrics HTTP/1.1\r\n\r\n"),
       })
    EXPECT_EQ(status_of(bad), "HTTP/1.1 400 Bad Request") << bad;
  EXPECT_EQ(status_of(std::string("GET /") + std::string(3000, 'a') + " HTTP/1.1\r\n\r\n"), "HTTP/1.1 400 Bad Request");
}

}  // namespace
}  // namespace vnet
