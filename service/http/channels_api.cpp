// Channels: info and delete.
#include <fmt/format.h>

#include "http/api.hpp"
#include "log.hpp"
#include "text/names.hpp"

namespace seqcast::http {

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

}  // namespace seqcast::http
