// Publishing: POST /v1/channels/{c}/messages (one message) and POST /v1/publish (a batch).
#include <fmt/format.h>

#include "http/api.hpp"
#include "text/json_scan.hpp"
#include "text/names.hpp"

namespace seqcast::http {

namespace {

std::string result_json(const storage::publish_result& r) {
  return fmt::format(R"({{"channel":{},"seq":{},"epoch":{},"ts":"{}"}})", json::quoted(r.channel),
                     r.seq, json::quoted(r.epoch), text::rfc3339(r.ts_us));
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// A publish that failed in storage: counted as refused (4xx) or unavailable (503).
response failed(node_state& state, const storage::error& e) {
  (e.code == storage::errc::unavailable ? state.publish_unavailable : state.publish_rejected)
      .fetch_add(1, std::memory_order_relaxed);
  return storage_error_response(e);
}

}  // namespace

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
    if (o.failure) return respond(failed(state_, *o.failure));
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
    if (o.failure) return respond(failed(state_, *o.failure));
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

}  // namespace seqcast::http
