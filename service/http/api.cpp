// The REST API: routes plain requests to publish, channel info, health and metrics.
#include "http/api.hpp"

#include <fmt/format.h>

#include "log.hpp"
#include "text/json_scan.hpp"
#include "text/names.hpp"
#include "web_assets.hpp"

namespace seqcast::http {

namespace {

std::string result_json(const storage::publish_result& r) {
  return fmt::format(R"({{"channel":{},"seq":{},"epoch":{},"ts":"{}"}})", quoted(r.channel), r.seq,
                     quoted(r.epoch), text::rfc3339(r.ts_us));
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

response json_response(int status, std::string body) {
  response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

}  // namespace

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

std::string quoted(std::string_view s) {
  std::string out;
  json::append_string(out, s);
  return out;
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
                                           quoted(code), quoted(message)));
}

api::api(const config& cfg, const auth::authenticator& auth, publish::group_committer& committer,
         blocking_pool& pool, hub::hub& hub, node_state& state, drain::drainer& drainer)
    : cfg_(cfg),
      auth_(auth),
      committer_(committer),
      pool_(pool),
      hub_(hub),
      state_(state),
      drainer_(drainer) {}

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
  if (path == "/readyz") {
    const bool ok = state_.ready();
    return respond(json_response(
        ok ? 200 : 503, fmt::format(R"({{"status":"{}","database":{},"schema":{},"draining":{}}})",
                                    ok ? "ready" : "unavailable", state_.listener_connected.load(),
                                    state_.schema_current.load(), state_.draining.load())));
  }
  if (path == "/metrics") return respond(metrics());
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
  if (path == "/v1/admin/drain") {
    if (req.method != "POST") return respond(error_response(405, "method_not_allowed", "use POST"));
    if (auto v = auth_.admin(req.authorization); v != auth::verdict::allowed) {
      return respond(auth_error(v));
    }
    return admin_drain(req, std::move(respond));
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

void api::publish_one(const std::string& channel, request req, respond_fn respond) {
  if (req.idempotency_key && !text::valid_idempotency_key(*req.idempotency_key)) {
    state_.publish_rejected.fetch_add(1, std::memory_order_relaxed);
    return respond(error_response(400, "invalid_idempotency_key",
                                  "Idempotency-Key must be 1-128 printable ASCII characters"));
  }
  if (req.body.size() > static_cast<std::size_t>(cfg_.max_payload_bytes)) {
    state_.publish_rejected.fetch_add(1, std::memory_order_relaxed);
    return respond(error_response(413, "payload_too_large",
                                  fmt::format("payload exceeds {} bytes", cfg_.max_payload_bytes)));
  }
  if (auto why = json::validate(req.body, cfg_.max_json_depth)) {
    state_.publish_rejected.fetch_add(1, std::memory_order_relaxed);
    return respond(error_response(400, "invalid_json", *why));
  }
  storage::publish_request pr;
  pr.items.push_back({channel, std::move(req.body), std::move(req.idempotency_key)});
  committer_.submit(std::move(pr), [this, started = std::chrono::steady_clock::now(),
                                    respond = std::move(respond)](storage::publish_outcome o) {
    state_.publish_seconds.observe(seconds_since(started));
    if (o.failure) {
      (o.failure->code == storage::errc::unavailable ? state_.publish_unavailable
                                                     : state_.publish_rejected)
          .fetch_add(1, std::memory_order_relaxed);
      return respond(storage_error_response(*o.failure));
    }
    state_.publish_ok.fetch_add(1, std::memory_order_relaxed);
    const auto& r = o.results.front();
    respond(json_response(r.duplicate ? 200 : 201, result_json(r)));
  });
}

void api::publish_batch(request req, respond_fn respond) {
  std::vector<json::batch_item> items;
  // The envelope {"messages":[{"data":…}]} adds three levels around each payload.
  if (auto why = json::parse_batch(req.body, cfg_.max_json_depth + 3, items)) {
    state_.publish_rejected.fetch_add(1, std::memory_order_relaxed);
    return respond(error_response(400, "invalid_json", *why));
  }
  storage::publish_request pr;
  for (const auto& it : items) {
    std::string_view bad_code, bad_message;
    if (!text::valid_channel(it.channel)) {
      bad_code = "invalid_channel";
      bad_message = text::channel_rule;
    } else if (it.idempotency_key && !text::valid_idempotency_key(*it.idempotency_key)) {
      bad_code = "invalid_idempotency_key";
      bad_message = "idempotency_key must be 1-128 printable ASCII characters";
    } else if (it.data.size() > static_cast<std::size_t>(cfg_.max_payload_bytes)) {
      state_.publish_rejected.fetch_add(1, std::memory_order_relaxed);
      return respond(
          error_response(413, "payload_too_large",
                         fmt::format("a payload exceeds {} bytes", cfg_.max_payload_bytes)));
    }
    if (!bad_code.empty()) {
      state_.publish_rejected.fetch_add(1, std::memory_order_relaxed);
      return respond(error_response(400, bad_code, bad_message));
    }
    pr.items.push_back({it.channel, std::string(it.data), it.idempotency_key});
  }
  const std::size_t n = pr.items.size();
  committer_.submit(std::move(pr), [this, n, started = std::chrono::steady_clock::now(),
                                    respond = std::move(respond)](storage::publish_outcome o) {
    state_.publish_seconds.observe(seconds_since(started));
    if (o.failure) {
      (o.failure->code == storage::errc::unavailable ? state_.publish_unavailable
                                                     : state_.publish_rejected)
          .fetch_add(1, std::memory_order_relaxed);
      return respond(storage_error_response(*o.failure));
    }
    state_.publish_ok.fetch_add(n, std::memory_order_relaxed);
    bool any_new = false;
    std::string body = R"({"results":[)";
    for (std::size_t i = 0; i < o.results.size(); ++i) {
      if (i) body += ',';
      body += result_json(o.results[i]);
      any_new = any_new || !o.results[i].duplicate;
    }
    body += "]}";
    respond(json_response(any_new ? 201 : 200, std::move(body)));
  });
}

void api::channel_info(const std::string& channel, respond_fn respond) {
  pool_.post([this, channel, respond = std::move(respond)](storage::pg_reader& db) {
    auto info = db.channel(channel);
    if (!info) return respond(storage_error_response(info.err()));
    const auto& c = info.value();
    respond(json_response(
        200,
        fmt::format(R"({{"channel":{},"epoch":{},"first_seq":{},"last_seq":{},"subscribers":{}}})",
                    quoted(c.name), quoted(c.epoch), c.first_seq, c.last_seq,
                    hub_.subscriber_count(channel))));
  });
}

void api::delete_channel(const std::string& channel, respond_fn respond) {
  pool_.post([channel, respond = std::move(respond)](storage::pg_reader& db) {
    auto r = db.delete_channel(channel);
    if (!r) return respond(storage_error_response(r.err()));
    if (r.value()) log::info("api", "channel deleted channel={}", channel);
    response res;
    res.status = 204;
    res.content_type.clear();
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

response api::metrics() const {
  response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  auto counter = [&](std::string_view name, std::string_view help, std::uint64_t v,
                     std::string_view type = "counter") {
    r.body += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, v);
  };
  const auto& h = hub_.counters();
  counter("seqcast_connections", "Open WebSocket and SSE connections.", state_.connections.load(),
          "gauge");
  counter("seqcast_http_connections", "Open plain HTTP connections.",
          state_.http_connections.load(), "gauge");
  counter("seqcast_refused_connections_total", "Connections refused over max_connections.",
          state_.refused_connections.load());
  counter("seqcast_subscriptions", "Active subscriptions.", state_.subscriptions.load(), "gauge");
  counter("seqcast_channels", "Channels with subscribers on this node.", hub_.channel_count(),
          "gauge");
  counter("seqcast_publish_ok_total", "Messages acknowledged.", state_.publish_ok.load());
  counter("seqcast_publish_rejected_total", "Publishes refused with 4xx.",
          state_.publish_rejected.load());
  counter("seqcast_publish_unavailable_total", "Publishes refused with 503.",
          state_.publish_unavailable.load());
  counter("seqcast_messages_ingested_total", "Messages handed to the hub.",
          h.messages_ingested.load());
  counter("seqcast_deliveries_total", "Message frames handed to connections.", h.deliveries.load());
  counter("seqcast_ingest_fetches_total", "PostgreSQL range reads by live ingest.",
          h.fetches.load());
  counter("seqcast_replay_memory_messages_total", "Replayed messages served from memory.",
          h.replay_memory.load());
  counter("seqcast_replay_cache_messages_total", "Replayed messages served from the RocksDB cache.",
          h.replay_cache.load());
  counter("seqcast_replay_pg_messages_total", "Replayed messages read from PostgreSQL.",
          h.replay_pg.load());
  counter("seqcast_replay_pg_queries_total", "PostgreSQL range reads for replays.",
          h.replay_pg_queries.load());
  counter("seqcast_resets_total", "Reset frames sent.", h.resets.load());
  counter("seqcast_hub_read_retries_total",
          "Hub reads of PostgreSQL (heads, live ranges, replays) retried after a failure.",
          h.read_retries.load());
  counter("seqcast_pg_queries_total", "PostgreSQL round trips by the read pool.", pool_.queries());
  counter("seqcast_slow_consumer_closes_total", "Connections closed as slow consumers (1013).",
          state_.slow_consumer_closes.load());
  counter("seqcast_listener_reconnects_total", "LISTEN connection (re)opens.",
          state_.listener_reconnects.load());
  counter("seqcast_draining", "1 while this node drains.", state_.draining ? 1 : 0, "gauge");
  counter("seqcast_send_queue_bytes", "Bytes queued to all connections.",
          static_cast<std::uint64_t>(std::max<std::int64_t>(state_.send_queue_bytes.load(), 0)),
          "gauge");
  counter("seqcast_pg_errors_total", "PostgreSQL operations that failed.", storage::pg_errors());
  state_.publish_seconds.write(r.body, "seqcast_publish_seconds",
                               "Publish latency, request to acknowledgement.");
  state_.batch_messages.write(r.body, "seqcast_commit_batch_messages",
                              "Messages per group-commit transaction.");
  h.delivery_lag_seconds.write(r.body, "seqcast_delivery_lag_seconds",
                               "Commit to fan-out delay of live messages.");
  return r;
}

}  // namespace seqcast::http
