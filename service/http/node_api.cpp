// The node itself: health, readiness, metrics (Prometheus text and JSON with a short
// history), the nodes sharing the database, and the operator's drain.
#include <fmt/format.h>

#include "http/api.hpp"
#include "presence.hpp"
#include "text/json_scan.hpp"
#include "text/names.hpp"

namespace seqcast::http {

namespace {

// /readyz's body, also part of /v1/stats.
std::string readiness_json(const node_state& state) {
  return fmt::format(R"({{"status":"{}","database":{},"schema":{},"draining":{}}})",
                     state.ready() ? "ready" : "unavailable", state.listener_connected.load(),
                     state.schema_current.load(), state.draining.load());
}

}  // namespace

response api::readiness() const {
  return json_response(state_.ready() ? 200 : 503, readiness_json(state_));
}

response api::prometheus() const {
  response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics_.prometheus();
  return r;
}

void api::stats(const request&, respond_fn respond) {
  std::string body = fmt::format(
      R"({{"node":{{"name":{},"address":{},"version":{},"started_at":"{}"}},"readiness":{},)",
      json::quoted(self_.name), json::quoted(self_.address), json::quoted(self_.version),
      text::rfc3339(self_.started_at_us), readiness_json(state_));
  body += R"("metrics":)";
  body += metrics_.json();
  body += R"(,"history":)";
  body += metrics_.history_json();
  body += '}';
  auto res = json_response(200, std::move(body));
  res.headers.emplace_back("Cache-Control", "no-store");
  respond(std::move(res));
}

void api::nodes(const request&, respond_fn respond) {
  pool_.post([respond = std::move(respond)](storage::pg_reader& db) {
    auto rows = db.nodes(presence::window_seconds);
    if (!rows) return respond(storage_error_response(rows.err()));
    std::string body = R"({"nodes":[)";
    bool first = true;
    for (const auto& n : rows.value()) {
      body += fmt::format(
          R"({}{{"name":{},"address":{},"version":{},"started_at":"{}","last_seen":"{}",)"
          R"("connections":{{"websocket":{},"cable":{},"sse":{}}},"draining":{}}})",
          first ? "" : ",", json::quoted(n.name), json::quoted(n.address), json::quoted(n.version),
          text::rfc3339(n.started_at_us), text::rfc3339(n.last_seen_us), n.websocket, n.cable,
          n.sse, n.draining);
      first = false;
    }
    body += "]}";
    auto res = json_response(200, std::move(body));
    res.headers.emplace_back("Cache-Control", "no-store");
    respond(std::move(res));
  });
}

void api::admin_drain(const request& req, respond_fn respond) {
  std::int64_t window = cfg_.drain_window_seconds;
  if (auto w = text::query_param(req.query, "window_seconds")) {
    auto v = text::parse_uint(*w);
    if (!v || *v > 3600) {
      return respond(
          error_response(400, "invalid_request", "window_seconds must be an integer in [0, 3600]"));
    }
    window = *v;
  }
  // Out of the load balancer while clients move; back in afterwards, unless
  // the process is shutting down meanwhile.
  state_.draining = true;
  state_.upgrades_closed = true;
  drainer_.start(std::chrono::seconds(window), [this] {
    if (state_.shutting_down) return;
    state_.draining = false;
    state_.upgrades_closed = false;
  });
  respond(json_response(202, fmt::format(R"({{"draining":true,"window_seconds":{}}})", window)));
}

}  // namespace seqcast::http
