// Channels: info, delete, and the list an operator pages through
// (GET /v1/channels?prefix=P&after=NAME&limit=N).
#include <fmt/format.h>

#include "http/api.hpp"
#include "log.hpp"
#include "text/json_scan.hpp"
#include "text/names.hpp"

namespace seqcast::http {

namespace {

constexpr std::int64_t default_list_limit = 100;
constexpr std::int64_t max_list_limit = 1000;

// Listing by prefix needs a claim that covers every channel the prefix can name:
// an entry "X*" with the prefix starting with X (no prefix: "*").
bool may_list(const auth::reader& who, std::string_view prefix) {
  if (who.everything) return true;
  for (const auto& c : who.channels) {
    if (!c.empty() && c.back() == '*' &&
        prefix.starts_with(std::string_view(c).substr(0, c.size() - 1))) {
      return true;
    }
  }
  return false;
}

// Whether `name` appears in the query string at all (decodable or not).
bool has_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    if (pair.substr(0, pair.find('=')) == name) return true;
    query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
  }
  return false;
}

}  // namespace

void api::channel_info(const std::string& channel, respond_fn respond) {
  pool_.post([this, channel, respond = std::move(respond)](storage::pg_reader& db) {
    auto info = db.channel(channel);
    if (!info) return respond(storage_error_response(info.err()));
    const auto& c = info.value();
    respond(json_response(
        200,
        fmt::format(R"({{"channel":{},"epoch":{},"first_seq":{},"last_seq":{},"subscribers":{}}})",
                    json::quoted(c.name), json::quoted(c.epoch), c.first_seq, c.last_seq,
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

void api::list_channels(const request& req, respond_fn respond) {
  const auto prefix_param = text::query_param(req.query, "prefix");
  const auto after_param = text::query_param(req.query, "after");
  if ((!prefix_param && has_param(req.query, "prefix")) ||
      (!after_param && has_param(req.query, "after"))) {
    return respond(error_response(400, "invalid_request", "prefix or after: a bad %-escape"));
  }
  const std::string prefix = prefix_param.value_or("");
  const std::string after = after_param.value_or("");
  if (!prefix.empty() && !text::valid_channel(prefix)) {
    return respond(error_response(400, "invalid_request",
                                  "prefix must be up to 1024 of A-Z a-z 0-9 _ - . : @ = /"));
  }
  if (!after.empty() && !text::valid_channel(after)) {
    return respond(
        error_response(400, "invalid_request",
                       "after must be a channel name: 1-1024 of A-Z a-z 0-9 _ - . : @ = /"));
  }
  std::int64_t limit = default_list_limit;
  // A limit that is there but cannot be decoded (a bad %-escape) is refused too.
  if (auto l = text::query_param(req.query, "limit"); l || has_param(req.query, "limit")) {
    auto v = l ? text::parse_uint(*l) : std::nullopt;
    if (!v || *v < 1 || *v > max_list_limit) {
      return respond(
          error_response(400, "invalid_request",
                         fmt::format("limit must be an integer in [1, {}]", max_list_limit)));
    }
    limit = *v;
  }
  auto token = text::query_param(req.query, "token");
  auto who =
      auth_.read(req.authorization, token ? std::optional<std::string_view>(*token) : std::nullopt);
  if (!who) return respond(auth_error(auth::verdict::unauthorized));
  if (!may_list(*who, prefix)) return respond(auth_error(auth::verdict::forbidden));

  pool_.post([this, prefix, after, limit, respond = std::move(respond)](storage::pg_reader& db) {
    // One more than asked: whether another page follows.
    auto rows = db.list_channels(prefix, after, static_cast<std::size_t>(limit) + 1);
    if (!rows) return respond(storage_error_response(rows.err()));
    auto& list = rows.value();
    const bool more = list.size() > static_cast<std::size_t>(limit);
    if (more) list.resize(static_cast<std::size_t>(limit));
    std::string body = R"({"channels":[)";
    for (std::size_t i = 0; i < list.size(); ++i) {
      const auto& c = list[i];
      body += fmt::format(
          R"({}{{"channel":{},"epoch":{},"first_seq":{},"last_seq":{},"messages":{},"bytes":{},)"
          R"("subscribers":{}}})",
          i ? "," : "", json::quoted(c.info.name), json::quoted(c.info.epoch), c.info.first_seq,
          c.info.last_seq, c.messages, c.bytes, hub_.subscriber_count(c.info.name));
    }
    body += fmt::format(R"(],"next":{}}})", more ? json::quoted(list.back().info.name) : "null");
    auto res = json_response(200, std::move(body));
    res.headers.emplace_back("Cache-Control", "no-cache");
    respond(std::move(res));
  });
}

}  // namespace seqcast::http
