// The REST API: routes plain requests to their handlers, one file per job —
// publish_api.cpp, channels_api.cpp (info, delete, list), log_api.cpp, node_api.cpp
// (health, metrics, stats, nodes, drain). Beast-free: http_session converts to and
// from these structs.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "auth/authenticator.hpp"
#include "blocking_pool.hpp"
#include "config.hpp"
#include "drain/drainer.hpp"
#include "hub/sharded_hub.hpp"
#include "metrics/registry.hpp"
#include "node_identity.hpp"
#include "node_state.hpp"
#include "publish/group_committer.hpp"

namespace seqcast::http {

struct request {
  std::string method;  // GET, POST, …
  std::string path;    // without the query
  std::string query;   // after '?', undecoded
  std::string body;
  std::optional<std::string> idempotency_key;
  std::string authorization;
  std::string accept;
};

// A body produced piece by piece (NDJSON log streams), so memory stays
// constant for any range. The session asks for the next chunk only after the
// previous one was written.
class body_source {
 public:
  virtual ~body_source() = default;
  // Calls `done` exactly once, from any thread, with the next chunk; `last`
  // ends the body; `failed` aborts it (the connection is closed mid-body, so
  // the client sees an incomplete response rather than a silently short one).
  virtual void next(std::function<void(std::string chunk, bool last, bool failed)> done) = 0;
};

struct response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<body_source> stream;  // set: body is streamed with chunked encoding
};

// Called exactly once, from any thread; the caller posts to its own strand.
using respond_fn = std::function<void(response)>;

// A JSON answer with the given status.
response json_response(int status, std::string body);

// {"error":{"code":…,"message":…}} with the given status.
response error_response(int status, std::string_view code, std::string_view message);

// 401 (with WWW-Authenticate) or 403 for a refused verdict.
response auth_error(auth::verdict v);

// The JSON error answer for a storage failure (404, 409, 503, or a logged 500).
response storage_error_response(const storage::error& e);

// Thread-safe: handle() only reads config and posts work.
class api {
 public:
  // `self` may be completed after construction, before the node serves (its port).
  api(const config& cfg, const auth::authenticator& auth, publish::group_committer& committer,
      blocking_pool& pool, hub::sharded_hub& hub, node_state& state, drain::drainer& drainer,
      const metrics::registry& metrics, const node_identity& self);

  void handle(request req, respond_fn respond);

  // The body limit for a request to `path`, chosen before its body is read.
  std::size_t body_limit(std::string_view method, std::string_view path) const;

 private:
  // publish_api.cpp
  void publish_one(const std::string& channel, request req, respond_fn respond);
  void publish_batch(request req, respond_fn respond);
  // channels_api.cpp
  void channel_info(const std::string& channel, respond_fn respond);
  void delete_channel(const std::string& channel, respond_fn respond);
  void list_channels(const request& req, respond_fn respond);
  // log_api.cpp
  void read_log(const std::string& channel, const request& req, respond_fn respond);
  // node_api.cpp
  response readiness() const;
  response prometheus() const;
  void stats(const request& req, respond_fn respond);
  void nodes(const request& req, respond_fn respond);
  void admin_drain(const request& req, respond_fn respond);

  const config& cfg_;
  const auth::authenticator& auth_;
  publish::group_committer& committer_;
  blocking_pool& pool_;
  hub::sharded_hub& hub_;
  node_state& state_;
  drain::drainer& drainer_;
  const metrics::registry& metrics_;
  const node_identity& self_;
};

}  // namespace seqcast::http
