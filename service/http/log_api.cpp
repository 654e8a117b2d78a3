// Log reads: GET /v1/channels/{c}/messages as JSON pages or an NDJSON stream.
#include <fmt/format.h>

#include "http/api.hpp"
#include "text/json_scan.hpp"
#include "text/names.hpp"

namespace seqcast::http {

namespace {

constexpr std::int64_t default_limit = 100;
constexpr std::int64_t max_page_limit = 1000;
// Payload bytes per page of the log API or per NDJSON chunk: a page of big messages
// ends early (its `next` says where to go on), so no read holds more than this
// (plus one message) in memory, whatever the messages' size.
constexpr std::size_t page_bytes = 4 << 20;
constexpr storage::page_limit stream_page{1000, page_bytes};

std::string ndjson_line(const std::string& channel, const storage::stored_message& m) {
  std::string line = fmt::format(R"({{"channel":{},"seq":{},"ts":"{}","data":)",
                                 json::quoted(channel), m.seq, text::rfc3339(m.ts_us));
  line += m.payload;
  line += "}\n";
  return line;
}

// Streams seqs [next, end] of one channel row, a page per chunk.
class ndjson_source final : public body_source, public std::enable_shared_from_this<ndjson_source> {
 public:
  ndjson_source(blocking_pool& pool, std::string channel, storage::channel_id id,
                storage::seq_t from, storage::seq_t end)
      : pool_(pool), channel_(std::move(channel)), id_(id), next_(from), end_(end) {}

  void next(std::function<void(std::string, bool, bool)> done) override {
    if (next_ > end_) return done({}, true, false);
    pool_.post([self = shared_from_this(), done = std::move(done)](storage::pg_reader& db) {
      auto rows = db.read_range(self->id_, self->next_ - 1, self->end_, stream_page);
      if (!rows) return done({}, true, true);
      std::string chunk;
      for (const auto& m : rows.value()) chunk += ndjson_line(self->channel_, m);
      // Nothing more exists up to end_ (trimmed meanwhile, or deleted): stop.
      const bool exhausted = rows.value().empty();
      if (!exhausted) self->next_ = rows.value().back().seq + 1;
      done(std::move(chunk), exhausted || self->next_ > self->end_, false);
    });
  }

 private:
  blocking_pool& pool_;
  std::string channel_;
  storage::channel_id id_;
  storage::seq_t next_;  // touched by one pool job at a time (the session waits for each chunk)
  storage::seq_t end_;
};

std::optional<std::int64_t> int_param(std::string_view query, std::string_view name, bool& bad) {
  auto v = text::query_param(query, name);
  if (!v) return std::nullopt;
  auto n = text::parse_uint(*v);
  if (!n) bad = true;
  return n;
}

}  // namespace

void api::read_log(const std::string& channel, const request& req, respond_fn respond) {
  bool bad = false;
  const auto from = int_param(req.query, "from", bad);
  const auto limit = int_param(req.query, "limit", bad);
  if (bad || (limit && *limit == 0)) {
    return respond(
        error_response(400, "invalid_request", "from and limit must be positive integers"));
  }
  const bool ndjson = req.accept.find("application/x-ndjson") != std::string::npos;
  pool_.post([this, channel, from, limit, ndjson,
              respond = std::move(respond)](storage::pg_reader& db) {
    auto info = db.channel(channel);
    if (!info) return respond(storage_error_response(info.err()));
    const auto& c = info.value();
    const storage::seq_t start = std::max(from.value_or(c.first_seq), c.first_seq);
    if (ndjson) {
      // Up to the head at request time, or `limit` messages; no cap.
      storage::seq_t end = c.last_seq;
      if (limit) end = std::min<storage::seq_t>(end, start + *limit - 1);
      response res;
      res.content_type = "application/x-ndjson";
      res.stream = std::make_shared<ndjson_source>(pool_, c.name, c.id, start, end);
      return respond(std::move(res));
    }
    const std::int64_t n = std::min(limit.value_or(default_limit), max_page_limit);
    auto rows =
        db.read_range(c.id, start - 1, c.last_seq, {static_cast<std::size_t>(n), page_bytes});
    if (!rows) return respond(storage_error_response(rows.err()));
    const auto& got = rows.value();
    std::string body =
        fmt::format(R"({{"channel":{},"epoch":{},"first_seq":{},"last_seq":{},"messages":[)",
                    json::quoted(c.name), json::quoted(c.epoch), c.first_seq, c.last_seq);
    for (std::size_t i = 0; i < got.size(); ++i) {
      body += fmt::format(R"({}{{"seq":{},"ts":"{}","data":)", i ? "," : "", got[i].seq,
                          text::rfc3339(got[i].ts_us));
      body += got[i].payload;
      body += '}';
    }
    const bool at_head = got.empty() || got.back().seq >= c.last_seq;
    body += fmt::format(R"(],"next":{}}})", at_head ? "null" : std::to_string(got.back().seq + 1));
    response res;
    res.body = std::move(body);
    if (!at_head) {
      // A page wholly below the head (full by count or by bytes) never changes: let a
      // CDN keep it.
      res.headers.emplace_back("Cache-Control", "public, max-age=31536000, immutable");
      res.headers.emplace_back(
          "ETag", fmt::format("\"{}:{}-{}\"", c.epoch, got.front().seq, got.back().seq));
    } else {
      res.headers.emplace_back("Cache-Control", "no-cache");
    }
    respond(std::move(res));
  });
}

}  // namespace seqcast::http
