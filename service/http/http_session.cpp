// The HTTP listener and sessions: read a request, route it to the API, or upgrade to WebSocket.
#include <fmt/format.h>

#include <deque>
#include <sstream>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "http/server.hpp"
#include "http/sse_session.hpp"
#include "log.hpp"
#include "protocol/cable.hpp"
#include "session/face.hpp"
#include "session/websocket_session.hpp"
#include "text/names.hpp"
#include "ws/wire.hpp"

namespace seqcast::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

void fail(beast::error_code ec, std::string_view what) {
  if (ec == net::error::operation_aborted || ec == bhttp::error::end_of_stream ||
      ec == beast::error::timeout || ec == net::error::connection_reset || ec == net::error::eof)
    return;
  log::debug("http", "{} failed error=\"{}\"", what, ec.message());
}

// Reads requests and answers them in order; owned by the chain of its pending handlers.
//
// Pipelining: when a publish is dispatched and the client has already sent more (a
// pipelined request is in the buffer), the next one is read at once; if it is a publish
// too, it is dispatched at once, up to `max_pipelined` unanswered. Answers go out in
// request order, every answer ready at the front in one gathered write. Any other
// request waits until every answer before it is written, so that it sees what they did
// (RFC 9112 9.3.2: only safe requests may be processed in parallel; publishes are
// ordered by the committer's queue instead).
class http_session : public std::enable_shared_from_this<http_session> {
 public:
  http_session(tcp::socket&& socket, const services& s) : stream_(std::move(socket)), s_(s) {
    s_.ctx.state.http_connections.fetch_add(1, std::memory_order_relaxed);
  }

  ~http_session() {
    for (const auto& a : answers_)
      if (a.counted) s_.ctx.state.requests_in_flight.fetch_sub(1);
    s_.ctx.state.http_connections.fetch_sub(1, std::memory_order_relaxed);
  }

  void run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&http_session::do_read, shared_from_this()));
  }

 private:
  void do_read() {
    reading_ = true;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(s_.ctx.cfg.max_header_bytes));
    // The real limit depends on the route, known only after the header; a
    // declared Content-Length above it is refused in on_header.
    parser_->body_limit(boost::none);
    // Covers the idle wait between requests and a header sent byte by byte.
    stream_.expires_after(std::chrono::seconds(s_.ctx.cfg.http_idle_seconds));
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&http_session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::header_limit) {
      return send_error(431, "headers_too_large", "request headers are too large", false);
    }
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted) {
      return fail(ec, "read header");
    }
    if (ec) return send_error(400, "bad_request", "malformed HTTP request", false);
    auto& req = parser_->get();
    std::string_view target = req.target();
    std::string_view path = target.substr(0, target.find('?'));
    const bool cable = path == s_.ctx.cfg.actioncable_path;
    if (!answers_.empty() && !(is_publish(req.method(), path) &&
                               !beast::iequals(req[bhttp::field::expect], "100-continue"))) {
      deferred_ = true;  // on_header again once the answers before it are written
      return;
    }
    if (beast::websocket::is_upgrade(req) && (path == "/v1/ws" || cable)) {
      if (s_.ctx.state.upgrades_closed) {
        return send_error(503, "draining", "this node is draining; connect to another", false);
      }
      if (!origin_allowed(req)) {
        return send_error(403, "forbidden", "this Origin may not connect", false);
      }
      if (cable) {
        // Never an HTTP error for the token or the subprotocol: stock clients retry
        // a failed handshake forever. A bad token is told so over the socket.
        auto [who, refused] = cable_reader_of(req);
        reader_ = std::move(who);
        face_ = session::cable_face(protocol::cable::select_subprotocol(offered_protocols(req)),
                                    refused);
      } else {
        auto who = reader_of(req);
        if (!who) return send_unauthorized();
        reader_ = std::move(*who);
        face_ = session::native_face();
      }
      return bhttp::async_read(
          stream_, buffer_, *parser_,
          beast::bind_front_handler(&http_session::on_upgrade, shared_from_this()));
    }
    const std::size_t limit = s_.rest.body_limit(std::string_view(req.method_string()), path);
    if (auto declared = parser_->content_length(); declared && *declared > limit) {
      return send_error(413, "payload_too_large", fmt::format("the body exceeds {} bytes", limit),
                        false);
    }
    parser_->body_limit(limit);
    if (beast::iequals(req[bhttp::field::expect], "100-continue")) {
      // curl waits a second for this before sending a body larger than 1 KiB.
      static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
      return net::async_write(stream_, net::buffer(go_on.data(), go_on.size()),
                              [self = shared_from_this()](beast::error_code e, std::size_t) {
                                if (e) return fail(e, "write 100-continue");
                                self->do_read_body();
                              });
    }
    do_read_body();
  }

  void do_read_body() {
    stream_.expires_after(std::chrono::seconds(s_.ctx.cfg.http_body_seconds));
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&http_session::on_read, shared_from_this()));
  }

  void on_upgrade(beast::error_code ec, std::size_t) {
    if (ec) return fail(ec, "read upgrade");
    const auto& req = parser_->get();
    if (req[bhttp::field::sec_websocket_version] != "13") {
      auto r = error_response(426, "upgrade_required", "only WebSocket version 13 is spoken");
      r.headers.emplace_back("Sec-WebSocket-Version", "13");
      keep_alive_ = false;
      return send(std::move(r));
    }
    std::string key(req[bhttp::field::sec_websocket_key]);
    if (!ws::valid_client_key(key)) {
      return send_error(400, "bad_request", "missing or malformed Sec-WebSocket-Key", false);
    }
    stream_.expires_never();
    // Bytes the client sent behind its request belong to the WebSocket.
    const auto early = buffer_.cdata();
    session::run_websocket_session(
        stream_.release_socket(), std::move(key),
        std::string(static_cast<const char*>(early.data()), early.size()), std::move(reader_),
        std::move(face_), s_.ctx);
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::body_limit) {
      return send_error(413, "payload_too_large", "the body exceeds the limit", false);
    }
    if (ec) {
      if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout) return fail(ec, "read");
      return send_error(400, "bad_request", "malformed HTTP request", false);
    }
    auto req = parser_->release();
    keep_alive_ = req.keep_alive();
    if (req.method() == bhttp::verb::get && req.target().starts_with("/v1/sse/")) {
      if (s_.ctx.state.upgrades_closed) {
        // EventSource gives up for good on any error status; an empty stream
        // that closes makes it retry later (elsewhere, or here once back).
        return send_sse_retry();
      }
      if (!origin_allowed(req)) {
        return send_error(403, "forbidden", "this Origin may not connect", false);
      }
      return start_sse(req);
    }
    request r;
    r.method = std::string(req.method_string());
    std::string_view target = req.target();
    auto q = target.find('?');
    r.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
    if (auto it = req.find("Idempotency-Key"); it != req.end())
      r.idempotency_key = std::string(it->value());
    if (auto it = req.find(bhttp::field::authorization); it != req.end())
      r.authorization = std::string(it->value());
    if (auto it = req.find(bhttp::field::accept); it != req.end())
      r.accept = std::string(it->value());
    r.body = std::move(req.body());
    const bool publish = is_publish(req.method(), r.path);
    stream_.expires_never();  // a publish may wait for the database; its answer is bounded there
    // Counted until its answer is written, so that a draining node exits only
    // after every accepted publish was acknowledged.
    s_.ctx.state.requests_in_flight.fetch_add(1);
    answers_.push_back({std::nullopt, keep_alive_, true});
    answer* slot = &answers_.back();  // a deque keeps it in place until it is written
    reading_ = false;
    s_.rest.handle(std::move(r), [self = shared_from_this(), slot](response res) {
      net::post(self->stream_.get_executor(), [self, slot, res = std::move(res)]() mutable {
        slot->res = std::move(res);
        self->pump();
      });
    });
    // A publish sent behind a publish: read it now rather than after this answer.
    if (keep_alive_ && publish && answers_.size() < max_pipelined && buffer_.size() > 0) do_read();
  }

  // Publishes go through the group committer in the order they are handed to it, so
  // pipelined ones may be dispatched before the answers to those before them are
  // written: their seqs still follow the request order. Anything else waits.
  static bool is_publish(bhttp::verb method, std::string_view path) {
    return method == bhttp::verb::post &&
           (path == "/v1/publish" ||
            (path.starts_with("/v1/channels/") && path.ends_with("/messages")));
  }

  void start_sse(const bhttp::request<bhttp::string_body>& req) {
    std::string_view target = req.target();
    auto q = target.find('?');
    const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
    auto channel = text::percent_decode(target.substr(8, q == std::string_view::npos ? q : q - 8));
    if (!channel || !text::valid_channel(*channel)) {
      return send_error(400, "invalid_channel", text::channel_rule, true);
    }
    // EventSource resends the last id it saw; ?since= serves a first connect.
    std::optional<std::string> since_text = text::query_param(query, "since");
    if (auto it = req.find("Last-Event-ID"); it != req.end()) since_text = std::string(it->value());
    auto who = reader_of(req);
    if (!who) return send_unauthorized();
    if (!who->may_read(*channel)) {
      return send_error(403, "forbidden", "this token may not read this channel", true);
    }
    std::optional<storage::seq_t> since;
    if (since_text) {
      since = text::parse_uint(*since_text);
      if (!since)
        return send_error(400, "invalid_since", "since must be a non-negative integer", true);
    }
    stream_.expires_never();
    run_sse_session(std::move(stream_), std::move(*channel), since,
                    text::query_param(query, "epoch"), s_.ctx);
  }

  template <class Request>
  bool origin_allowed(const Request& req) const {
    auto it = req.find(bhttp::field::origin);
    return s_.ctx.auth.origin_allowed(
        it == req.end() ? std::nullopt : std::optional<std::string_view>(it->value()));
  }

  template <class Request>
  std::optional<auth::reader> reader_of(const Request& req) const {
    std::string_view target = req.target();
    auto q = target.find('?');
    std::optional<std::string> token;
    if (q != std::string_view::npos) token = text::query_param(target.substr(q + 1), "token");
    auto it = req.find(bhttp::field::authorization);
    return s_.ctx.auth.read(it == req.end() ? std::string_view{} : std::string_view(it->value()),
                            token ? std::optional<std::string_view>(*token) : std::nullopt);
  }

  // /cable: a token in ?token= or ?jid= (or a Bearer header) names what
  // `$pubsub` stream_name may read; none is fine (signed names need none).
  // Returns the reader and whether a token was given that does not verify.
  template <class Request>
  std::pair<auth::reader, bool> cable_reader_of(const Request& req) const {
    std::string_view target = req.target();
    auto q = target.find('?');
    std::optional<std::string> token;
    if (q != std::string_view::npos) {
      token = text::query_param(target.substr(q + 1), "token");
      if (!token) token = text::query_param(target.substr(q + 1), "jid");
    }
    auto it = req.find(bhttp::field::authorization);
    const std::string_view header =
        it == req.end() ? std::string_view{} : std::string_view(it->value());
    auto who =
        s_.ctx.auth.read(header, token ? std::optional<std::string_view>(*token) : std::nullopt);
    if (who) return {std::move(*who), false};
    return {auth::reader{}, token.has_value() || !header.empty()};
  }

  // Every Sec-WebSocket-Protocol header's values, comma-separated.
  template <class Request>
  static std::string offered_protocols(const Request& req) {
    std::string all;
    for (auto [it, end] = req.equal_range(bhttp::field::sec_websocket_protocol); it != end; ++it) {
      if (!all.empty()) all += ',';
      all += it->value();
    }
    return all;
  }

  void send_sse_retry() {
    keep_alive_ = false;
    response r;
    r.content_type = "text/event-stream; charset=utf-8";
    r.headers.emplace_back("Cache-Control", "no-cache");
    r.body = "retry: 2000\n\n";
    send(std::move(r));
  }

  void send_unauthorized() {
    keep_alive_ = false;
    send(auth_error(auth::verdict::unauthorized));
  }

  void send_error(int status, std::string_view code, std::string_view message, bool keep_alive) {
    keep_alive_ = keep_alive;
    send(error_response(status, code, message));
  }

  // An answer of the read path (an error, a refusal), in order behind those before it.
  void send(response r) {
    reading_ = false;
    answers_.push_back({std::move(r), keep_alive_, false});
    pump();
  }

  // Writes what is ready at the front of the answers, in one gathered write (a streamed
  // body on its own); with nothing left to answer, reads the next request.
  void pump() {
    if (writing_ || dead_) return;
    if (answers_.empty()) {
      if (deferred_) {
        deferred_ = false;
        return on_header({}, 0);
      }
      if (!reading_) do_read();
      return;
    }
    if (!answers_.front().res) return;
    writing_ = true;
    if (answers_.front().res->stream) {
      stream_keep_alive_ = answers_.front().keep_alive;
      return send_stream(std::move(*answers_.front().res));
    }
    auto out = std::make_shared<std::vector<std::string>>();
    bool close = false;
    for (auto& a : answers_) {
      if (!a.res || a.res->stream || close) break;
      out->push_back(serialize(std::move(*a.res), a.keep_alive));
      close = !a.keep_alive;
    }
    std::vector<net::const_buffer> buffers;
    for (const auto& text : *out) buffers.emplace_back(text.data(), text.size());
    stream_.expires_after(std::chrono::seconds(s_.ctx.cfg.http_body_seconds));
    net::async_write(stream_, buffers,
                     [self = shared_from_this(), out, close](beast::error_code ec, std::size_t) {
                       self->on_write(ec, out->size(), close);
                     });
  }

  static std::string serialize(response r, bool keep_alive) {
    bhttp::response<bhttp::string_body> res(static_cast<bhttp::status>(r.status), 11);
    res.set(bhttp::field::server, "seqcast");
    if (!r.content_type.empty()) res.set(bhttp::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res.set(k, v);
    res.keep_alive(keep_alive);
    res.body() = std::move(r.body);
    res.prepare_payload();
    std::ostringstream text;
    text << res;
    return std::move(text).str();
  }

  // Writes the header with chunked encoding, then one chunk per piece the
  // source produces, asking for the next only after the previous is written.
  void send_stream(response r) {
    auto res = std::make_shared<bhttp::response<bhttp::empty_body>>(
        static_cast<bhttp::status>(r.status), 11);
    res->set(bhttp::field::server, "seqcast");
    res->set(bhttp::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res->set(k, v);
    res->keep_alive(stream_keep_alive_);
    res->chunked(true);
    auto sr = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*res);
    bhttp::async_write_header(stream_, *sr,
                              [self = shared_from_this(), res, sr, source = std::move(r.stream)](
                                  beast::error_code ec, std::size_t) {
                                if (ec) return fail(ec, "write header");
                                self->next_chunk(source);
                              });
  }

  void next_chunk(std::shared_ptr<body_source> source) {
    source->next([self = shared_from_this(), source](std::string chunk, bool last, bool failed) {
      net::post(self->stream_.get_executor(),
                [self, source, chunk = std::move(chunk), last, failed]() mutable {
                  self->write_chunk(std::move(source), std::move(chunk), last, failed);
                });
    });
  }

  void write_chunk(std::shared_ptr<body_source> source, std::string chunk, bool last, bool failed) {
    if (failed) {
      // No final chunk: the client sees an incomplete body, not a short one.
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      return;
    }
    auto data = std::make_shared<std::string>(std::move(chunk));
    auto after = [self = shared_from_this(), source, data, last](beast::error_code ec,
                                                                 std::size_t) {
      if (ec) return fail(ec, "write chunk");
      if (!last) return self->next_chunk(source);
      net::async_write(self->stream_, bhttp::make_chunk_last(),
                       [self](beast::error_code e, std::size_t) {
                         self->on_write(e, 1, !self->stream_keep_alive_);
                       });
    };
    if (data->empty()) return after({}, 0);
    stream_.expires_after(std::chrono::seconds(s_.ctx.cfg.http_body_seconds));
    net::async_write(stream_, bhttp::make_chunk(net::buffer(*data)), std::move(after));
  }

  // `n` answers at the front were written (or failed to be).
  void on_write(beast::error_code ec, std::size_t n, bool close) {
    for (std::size_t i = 0; i < n && !answers_.empty(); ++i) {
      if (answers_.front().counted) s_.ctx.state.requests_in_flight.fetch_sub(1);
      answers_.pop_front();
    }
    writing_ = false;
    if (ec) {
      dead_ = true;
      return fail(ec, "write");
    }
    if (close) {
      dead_ = true;
      return linger();
    }
    if (answers_.empty() && !deferred_ && !reading_) {
      stream_.expires_never();  // do_read sets the idle timeout
    }
    pump();
  }

  // Closing a socket with unread input resets the connection, and the client
  // may lose our answer (say, a 413 while it still sends the body). So: stop
  // sending, then read and discard until the client closes, for a bounded time.
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(5));
    discard();
  }

  void discard() {
    stream_.async_read_some(net::buffer(discard_buf_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (!ec) self->discard();
                            });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  const services& s_;
  bool keep_alive_ = true;  // of the request being read (each answer keeps its own)
  struct answer {
    std::optional<response> res;  // set once the answer is ready
    bool keep_alive = true;       // false: the connection closes after this answer
    bool counted = false;         // counted in requests_in_flight until written
  };
  static constexpr std::size_t max_pipelined = 16;
  std::deque<answer> answers_;  // unwritten, in request order
  bool reading_ = false;        // a request is being read (or handled before its answer queues)
  bool writing_ = false;
  bool deferred_ = false;                // a header read ahead waits for the answers before it
  bool dead_ = false;                    // the connection is closing: nothing more is written
  bool stream_keep_alive_ = true;        // of the streamed answer being written
  auth::reader reader_;                  // who upgrades to WebSocket
  std::unique_ptr<session::face> face_;  // … and what it speaks
  std::array<char, 16384> discard_buf_{};
};

}  // namespace

struct server::impl : std::enable_shared_from_this<server::impl> {
  impl(io_threads& threads, const services& deps)
      : io(threads), s(deps), acceptor(net::make_strand(threads.main())) {}

  void do_accept() {
    // The connection lives on one I/O thread: its handlers need no strand.
    acceptor.async_accept(io.next(),
                          beast::bind_front_handler(&impl::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors or similar: keep serving the connections we have.
      log::warn("http", "accept failed error=\"{}\"", ec.message());
    } else if (s.ctx.state.http_connections + s.ctx.state.connections >=
               static_cast<std::uint64_t>(s.ctx.cfg.max_connections)) {
      // Full: refuse at once rather than let one more client degrade the rest.
      s.ctx.state.refused_connections.fetch_add(1, std::memory_order_relaxed);
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      // Every answer is written whole (several pipelined ones gathered into one write),
      // so Nagle's algorithm only holds a second write back until the client's delayed
      // ACK: up to 40 ms per round of pipelined answers, per SSE event behind another.
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<http_session>(std::move(socket), s)->run();
    }
    if (acceptor.is_open()) do_accept();
  }

  io_threads& io;
  const services& s;
  tcp::acceptor acceptor;
};

server::server(io_threads& io, const services& s) : impl_(std::make_shared<impl>(io, s)) {}

server::~server() = default;

void server::start(const std::string& listen) {
  auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const std::string port = listen.substr(colon + 1);
  tcp::resolver resolver(impl_->io.main());
  beast::error_code ec;
  auto results = resolver.resolve(host.empty() ? "0.0.0.0" : host, port, ec);
  if (ec || results.empty()) {
    throw std::runtime_error(fmt::format("listen: cannot resolve '{}': {}", listen, ec.message()));
  }
  const tcp::endpoint ep = results.begin()->endpoint();
  auto& a = impl_->acceptor;
  a.open(ep.protocol());
  a.set_option(net::socket_base::reuse_address(true));
  a.bind(ep, ec);
  if (ec) throw std::runtime_error(fmt::format("listen: cannot bind {}: {}", listen, ec.message()));
  a.listen(net::socket_base::max_listen_connections);
  impl_->do_accept();
}

unsigned short server::port() const { return impl_->acceptor.local_endpoint().port(); }

void server::stop() {
  net::post(impl_->acceptor.get_executor(), [i = impl_] {
    beast::error_code ignored;
    i->acceptor.close(ignored);
  });
}

}  // namespace seqcast::http
