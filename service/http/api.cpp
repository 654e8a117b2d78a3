// The REST API: the router, and the answers every handler shares.
#include "http/api.hpp"

#include <fmt/format.h>

#include "log.hpp"
#include "text/json_scan.hpp"
#include "text/names.hpp"
#include "web_assets.hpp"

namespace seqcast::http {

response json_response(int status, std::string body) {
  response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

response storage_error_response(const storage::error& e) {
  switch (e.code) {
    case storage::errc::conflict:
      return error_response(409, "idempotency_key_reused",
                            "this idempotency key was used with a different body");
    case storage::errc::not_found:
      return error_response(404, "channel_not_found", "no such channel");
    case storage::errc::unavailable:
      return error_response(503, "unavailable", "the database is unavailable; retry");
    case storage::errc::internal:
      break;
  }
  log::error("api", "internal error=\"{}\"", e.message);
  return error_response(500, "internal", "internal error");
}

namespace {

// Splits "/v1/channels/{c}[/messages]" into the decoded channel and the rest.
bool channel_route(std::string_view path, std::string& channel, std::string_view& rest) {
  constexpr std::string_view prefix = "/v1/channels/";
  if (!path.starts_with(prefix)) return false;
  path.remove_prefix(prefix.size());
  auto slash = path.find('/');
  rest = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
  auto decoded = text::percent_decode(path.substr(0, slash));
  channel = decoded ? *decoded : std::string("\x01");  // undecodable: invalid below
  return true;
}

}  // namespace

response error_response(int status, std::string_view code, std::string_view message) {
  return json_response(status, fmt::format(R"({{"error":{{"code":{},"message":{}}}}})",
                                           json::quoted(code), json::quoted(message)));
}

api::api(const config& cfg, const auth::authenticator& auth, publish::group_committer& committer,
         blocking_pool& pool, hub::sharded_hub& hub, node_state& state, drain::drainer& drainer,
         const metrics::registry& metrics, const node_identity& self)
    : cfg_(cfg),
      auth_(auth),
      committer_(committer),
      pool_(pool),
      hub_(hub),
      state_(state),
      drainer_(drainer),
      metrics_(metrics),
      self_(self) {}

response auth_error(auth::verdict v) {
  if (v == auth::verdict::forbidden) {
    return error_response(403, "forbidden", "these credentials may not do this");
  }
  auto r = error_response(401, "unauthorized", "missing or invalid credentials");
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

std::size_t api::body_limit(std::string_view method, std::string_view path) const {
  if (method != "POST") return 64 * 1024;
  if (path == "/v1/publish") return static_cast<std::size_t>(cfg_.max_batch_bytes);
  return static_cast<std::size_t>(cfg_.max_payload_bytes);
}

void api::handle(request req, respond_fn respond) {
  const std::string_view path = req.path;
  if (path == "/healthz") return respond(json_response(200, R"({"status":"ok"})"));
  if (path == "/readyz") return respond(readiness());
  if (path == "/metrics") return respond(prometheus());
  if (path == "/" || path == "/index.html") {
    response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::string(web::index_html());
    return respond(std::move(r));
  }
  if (path == "/v1/client.js" || path == "/v1/client.d.ts") {
    // The exact client build of this server: cacheable, revalidated by version.
    response r;
    const bool js = path == "/v1/client.js";
    r.content_type =
        js ? "text/javascript; charset=utf-8" : "application/typescript; charset=utf-8";
    r.body = std::string(js ? web::client_js() : web::client_d_ts());
    r.headers.emplace_back("Cache-Control", "public, max-age=300");
    r.headers.emplace_back(
        "ETag", fmt::format("\"{}-{:x}\"", SEQCAST_VERSION, std::hash<std::string>{}(r.body)));
    r.headers.emplace_back("Access-Control-Allow-Origin", "*");
    return respond(std::move(r));
  }
  if (path == "/v1/admin/drain" || path == "/v1/stats" || path == "/v1/nodes") {
    const bool drain = path == "/v1/admin/drain";
    if (req.method != (drain ? "POST" : "GET")) {
      return respond(error_response(405, "method_not_allowed", drain ? "use POST" : "use GET"));
    }
    if (auto v = auth_.admin(req.authorization); v != auth::verdict::allowed) {
      return respond(auth_error(v));
    }
    if (drain) return admin_drain(req, std::move(respond));
    if (path == "/v1/stats") return stats(req, std::move(respond));
    return nodes(req, std::move(respond));
  }
  if (path == "/v1/channels") {
    if (req.method != "GET") return respond(error_response(405, "method_not_allowed", "use GET"));
    return list_channels(req, std::move(respond));
  }
  if (path == "/v1/publish") {
    if (req.method != "POST") return respond(error_response(405, "method_not_allowed", "use POST"));
    if (auto v = auth_.publish(req.authorization); v != auth::verdict::allowed) {
      state_.publish_rejected.fetch_add(1, std::memory_order_relaxed);
      return respond(auth_error(v));
    }
    return publish_batch(std::move(req), std::move(respond));
  }
  std::string channel;
  std::string_view rest;
  if (channel_route(path, channel, rest)) {
    if (!text::valid_channel(channel)) {
      return respond(error_response(400, "invalid_channel", text::channel_rule));
    }
    if (rest == "/messages" && req.method == "POST") {
      if (auto v = auth_.publish(req.authorization); v != auth::verdict::allowed) {
        state_.publish_rejected.fetch_add(1, std::memory_order_relaxed);
        return respond(auth_error(v));
      }
      return publish_one(channel, std::move(req), std::move(respond));
    }
    if (rest.empty() && req.method == "DELETE") {
      if (auto v = auth_.admin(req.authorization); v != auth::verdict::allowed) {
        return respond(auth_error(v));
      }
      return delete_channel(channel, std::move(respond));
    }
    if (req.method == "GET" && (rest.empty() || rest == "/messages")) {
      auto token = text::query_param(req.query, "token");
      auto reader = auth_.read(req.authorization,
                               token ? std::optional<std::string_view>(*token) : std::nullopt);
      if (!reader) return respond(auth_error(auth::verdict::unauthorized));
      if (!reader->may_read(channel)) return respond(auth_error(auth::verdict::forbidden));
      if (rest.empty()) return channel_info(channel, std::move(respond));
      return read_log(channel, req, std::move(respond));
    }
    if (rest.empty() || rest == "/messages") {
      return respond(error_response(405, "method_not_allowed", "method not allowed here"));
    }
  }
  respond(error_response(404, "not_found", "no such endpoint"));
}

}  // namespace seqcast::http
