// The WebSocket protocol's frames.
#include "frames.hpp"

#include <fmt/format.h>

#include <iterator>

#include <boost/json.hpp>

#include "text/json_scan.hpp"
#include "text/names.hpp"

namespace seqcast::protocol {

namespace bj = boost::json;

std::string welcome(int heartbeat_seconds) {
  return fmt::format(R"({{"type":"welcome","version":"{}","heartbeat_seconds":{}}})", version,
                     heartbeat_seconds);
}

std::string subscribed(std::string_view channel, std::optional<std::string_view> epoch,
                       std::int64_t head) {
  return fmt::format(R"({{"type":"subscribed","channel":{},"epoch":{},"head":{}}})",
                     json::quoted(channel), epoch ? json::quoted(*epoch) : "null", head);
}

std::string message(std::string_view channel, std::string_view epoch, std::int64_t seq,
                    std::int64_t ts_us, std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + channel.size() + 96);
  out += R"({"type":"message","channel":)";
  json::append_string(out, channel);
  out += R"(,"epoch":)";
  json::append_string(out, epoch);
  fmt::format_to(std::back_inserter(out), R"(,"seq":{},"ts":")", seq);
  const std::size_t at = out.size();
  out.resize(at + text::rfc3339_size);
  text::write_rfc3339(ts_us, out.data() + at);
  out += R"(","data":)";
  out += payload;
  out += '}';
  return out;
}

std::string reset(std::string_view channel, std::optional<std::string_view> epoch,
                  std::int64_t first_seq, std::int64_t head, std::string_view reason,
                  std::optional<std::pair<std::int64_t, std::int64_t>> missed,
                  std::optional<std::int64_t> rewound_to) {
  return fmt::format(
      R"({{"type":"reset","channel":{},"epoch":{},"first_seq":{},"head":{},"reason":{},{}"missed":{}}})",
      json::quoted(channel), epoch ? json::quoted(*epoch) : "null", first_seq, head,
      json::quoted(reason), rewound_to ? fmt::format(R"("rewound_to":{},)", *rewound_to) : "",
      missed ? fmt::format("[{},{}]", missed->first, missed->second) : "null");
}

std::string error(std::string_view code, std::string_view message,
                  std::optional<std::string_view> channel) {
  return fmt::format(R"({{"type":"error","code":{},"message":{}{}}})", json::quoted(code),
                     json::quoted(message),
                     channel ? ",\"channel\":" + json::quoted(*channel) : "");
}

std::string reconnect(std::int64_t within_ms) {
  return fmt::format(R"({{"type":"reconnect","reason":"draining","within_ms":{}}})", within_ms);
}

std::string_view ping() { return R"({"type":"ping"})"; }
std::string_view pong() { return R"({"type":"pong"})"; }

client_op parse_client_op(std::string_view text, int max_depth) {
  bj::parse_options opts;
  opts.max_depth = static_cast<std::size_t>(max_depth);
  bj::error_code ec;
  bj::value v = bj::parse(bj::string_view(text.data(), text.size()), ec, {}, opts);
  if (ec) return op_error{"invalid_json", "frame is not valid JSON", std::nullopt};
  const bj::object* obj = v.if_object();
  if (!obj) return op_error{"invalid_op", "frame must be a JSON object", std::nullopt};
  const bj::value* op = obj->if_contains("op");
  if (!op || !op->is_string()) return op_error{"invalid_op", "missing \"op\"", std::nullopt};
  const std::string_view name = op->get_string();
  if (name == "ping") return ping_op{};
  if (name != "subscribe" && name != "unsubscribe") {
    return op_error{"invalid_op", fmt::format("unknown op \"{}\"", name.substr(0, 64)),
                    std::nullopt};
  }
  const bj::value* signed_name = obj->if_contains("signed_stream_name");
  if (name == "subscribe" && signed_name) {
    if (!signed_name->is_string() || signed_name->get_string().empty() ||
        signed_name->get_string().size() > max_signed_name_bytes) {
      return op_error{"invalid_op", "signed_stream_name must be a signed name (string)",
                      std::nullopt};
    }
  }
  const bj::value* ch = obj->if_contains("channel");
  if (name == "subscribe" && signed_name) {
    // The name is checked once its signature is (the session verifies it).
  } else if (!ch || !ch->is_string() || !text::valid_channel(ch->get_string())) {
    std::optional<std::string> c;
    if (ch && ch->is_string()) c = std::string(std::string_view(ch->get_string()).substr(0, 1024));
    return op_error{"invalid_channel", std::string(text::channel_rule), c};
  }
  std::string channel(signed_name ? signed_name->get_string() : ch->get_string());
  if (name == "unsubscribe") return unsubscribe_op{std::move(channel)};
  subscribe_op sub{channel, std::nullopt, std::nullopt, signed_name != nullptr};
  if (sub.signed_name) channel.clear();  // errors below name no channel yet
  if (const bj::value* since = obj->if_contains("since"); since && !since->is_null()) {
    if (since->is_int64() && since->get_int64() >= 0) {
      sub.since = since->get_int64();
    } else if (since->is_uint64() && since->get_uint64() <= INT64_MAX) {
      sub.since = static_cast<std::int64_t>(since->get_uint64());
    } else {
      return op_error{"invalid_since", "since must be a non-negative integer",
                      channel.empty() ? std::nullopt : std::optional(channel)};
    }
  }
  if (const bj::value* epoch = obj->if_contains("epoch"); epoch && !epoch->is_null()) {
    if (!epoch->is_string() || epoch->get_string().size() > 64) {
      return op_error{"invalid_epoch", "epoch must be a string",
                      channel.empty() ? std::nullopt : std::optional(channel)};
    }
    sub.epoch = std::string(epoch->get_string());
  }
  return sub;
}

}  // namespace seqcast::protocol
