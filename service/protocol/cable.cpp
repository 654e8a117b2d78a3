// Action Cable's frames and commands.
#include "protocol/cable.hpp"

#include <fmt/format.h>

#include <iterator>

#include <boost/json.hpp>

#include "protocol/frames.hpp"
#include "text/json_scan.hpp"

namespace seqcast::protocol::cable {

namespace bj = boost::json;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string with_identifier(std::string_view before, std::string_view identifier,
                            std::string_view after) {
  std::string out;
  out.reserve(before.size() + identifier.size() + after.size() + 8);
  out += before;
  json::append_string(out, identifier);
  out += after;
  return out;
}

std::optional<std::int64_t> non_negative(const bj::value& v) {
  if (v.is_int64() && v.get_int64() >= 0) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= INT64_MAX)
    return static_cast<std::int64_t>(v.get_uint64());
  if (v.is_double() && v.get_double() >= 0 && v.get_double() < 9e18)
    return static_cast<std::int64_t>(v.get_double());
  return std::nullopt;
}

// history: {"since": <unix s>, "streams": {S: {"epoch": E, "offset": N}}}; members of
// another shape are skipped (a stream without a usable position is simply not resumed).
history_request parse_history(const bj::object& h) {
  history_request r;
  if (const bj::value* since = h.if_contains("since")) r.since = non_negative(*since).value_or(0);
  const bj::value* streams = h.if_contains("streams");
  if (!streams || !streams->is_object()) return r;
  for (const auto& [name, pos] : streams->get_object()) {
    const bj::object* p = pos.if_object();
    if (!p) continue;
    const bj::value* epoch = p->if_contains("epoch");
    const bj::value* offset = p->if_contains("offset");
    if (!epoch || !epoch->is_string() || epoch->get_string().size() > 64) continue;
    std::optional<std::int64_t> n = offset ? non_negative(*offset) : std::optional<std::int64_t>(0);
    if (!n) continue;
    r.streams.emplace(std::string(name), position{std::string(epoch->get_string()), *n});
  }
  return r;
}

}  // namespace

std::string_view select_subprotocol(std::string_view offered) {
  bool json = false, unsupported = false;
  while (!offered.empty()) {
    const auto comma = offered.find(',');
    const std::string_view one = trim(offered.substr(0, comma));
    if (one == ext_json_protocol) return ext_json_protocol;
    if (one == json_protocol) json = true;
    if (one == unsupported_protocol) unsupported = true;
    if (comma == std::string_view::npos) break;
    offered.remove_prefix(comma + 1);
  }
  if (json) return json_protocol;
  if (unsupported) return unsupported_protocol;
  return {};
}

std::string welcome() { return R"({"type":"welcome"})"; }

std::string ping(std::int64_t unix_seconds) {
  return fmt::format(R"({{"type":"ping","message":{}}})", unix_seconds);
}

std::string confirm(std::string_view identifier) {
  return with_identifier(R"({"identifier":)", identifier, R"(,"type":"confirm_subscription"})");
}
std::string reject(std::string_view identifier) {
  return with_identifier(R"({"identifier":)", identifier, R"(,"type":"reject_subscription"})");
}
std::string confirm_history(std::string_view identifier) {
  return with_identifier(R"({"type":"confirm_history","identifier":)", identifier, "}");
}
std::string reject_history(std::string_view identifier) {
  return with_identifier(R"({"type":"reject_history","identifier":)", identifier, "}");
}

std::string disconnect(std::string_view reason, bool reconnect) {
  std::string out = R"({"type":"disconnect","reason":)";
  json::append_string(out, reason);
  out += reconnect ? R"(,"reconnect":true})" : R"(,"reconnect":false})";
  return out;
}

std::string message_head(std::string_view identifier, std::size_t payload_size) {
  std::string out;
  out.reserve(identifier.size() + payload_size + 160);
  out += R"({"identifier":)";
  json::append_string(out, identifier);
  out += R"(,"message":)";
  return out;
}

std::string message_tail(bool ext, std::string_view channel, std::string_view epoch,
                         std::int64_t seq) {
  if (!ext) return "}";
  std::string out = R"(,"stream_id":)";
  json::append_string(out, channel);
  out += R"(,"epoch":)";
  json::append_string(out, epoch);
  fmt::format_to(std::back_inserter(out), R"(,"offset":{}}})", seq);
  return out;
}

command parse_command(std::string_view text, int max_depth) {
  bj::parse_options opts;
  opts.max_depth = static_cast<std::size_t>(max_depth);
  bj::error_code ec;
  bj::value v = bj::parse(bj::string_view(text.data(), text.size()), ec, {}, opts);
  command c;
  if (ec || !v.is_object()) return c;
  const bj::object& obj = v.get_object();
  const bj::value* name = obj.if_contains("command");
  const bj::value* identifier = obj.if_contains("identifier");
  if (!name || !name->is_string() || !identifier || !identifier->is_string()) return c;
  const std::string_view n = name->get_string();
  if (n == "subscribe") {
    c.type = command::kind::subscribe;
  } else if (n == "unsubscribe") {
    c.type = command::kind::unsubscribe;
  } else if (n == "history") {
    c.type = command::kind::history;
  } else {
    return c;
  }
  c.identifier = std::string(identifier->get_string());
  if (const bj::value* h = obj.if_contains("history"); h && h->is_object()) {
    c.history = parse_history(h->get_object());
  }
  if (c.type == command::kind::history && !c.history) c.type = command::kind::ignored;
  return c;
}

std::optional<identifier> parse_identifier(std::string_view text, int max_depth) {
  bj::parse_options opts;
  opts.max_depth = static_cast<std::size_t>(max_depth);
  bj::error_code ec;
  bj::value v = bj::parse(bj::string_view(text.data(), text.size()), ec, {}, opts);
  if (ec || !v.is_object()) return std::nullopt;
  const bj::object& obj = v.get_object();
  const bj::value* channel = obj.if_contains("channel");
  if (!channel || !channel->is_string()) return std::nullopt;
  const std::string_view ch = channel->get_string();
  const bool turbo = ch == "Turbo::StreamsChannel";
  if (!turbo && ch != "$pubsub") return std::nullopt;
  if (const bj::value* s = obj.if_contains("signed_stream_name")) {
    if (!s->is_string() || s->get_string().empty() ||
        s->get_string().size() > max_signed_name_bytes) {
      return std::nullopt;
    }
    return identifier{identifier::kind::signed_stream, std::string(s->get_string())};
  }
  if (turbo) return std::nullopt;
  const bj::value* s = obj.if_contains("stream_name");
  if (!s || !s->is_string()) return std::nullopt;
  return identifier{identifier::kind::stream_name, std::string(s->get_string())};
}

}  // namespace seqcast::protocol::cable
