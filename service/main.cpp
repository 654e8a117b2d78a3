// seqcast's entry point: settings → objects → I/O threads → signals. No logic of its own.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "blocking_pool.hpp"
#include "cli.hpp"
#include "config.hpp"
#include "http/api.hpp"
#include "http/server.hpp"
#include "hub/hub.hpp"
#include "ingest/notify_listener.hpp"
#include "log.hpp"
#include "migrator.hpp"
#include "node_state.hpp"
#include "publish/group_committer.hpp"
#include "retention.hpp"
#include "rocksdb_replay_cache.hpp"

namespace net = boost::asio;

namespace seqcast {

namespace {

void warn_if_open(const config& c) {
  if (c.publish_keys.empty() && c.admin_key.empty()) {
    log::warn("auth", "no publish_keys or admin_key set: ANYONE CAN PUBLISH AND DELETE");
  }
  if (c.jwt_secret.empty()) {
    log::warn("auth", "no jwt_secret set: ANYONE CAN SUBSCRIBE AND READ ANY CHANNEL");
  }
}

int serve(const config& cfg) {
  node_state state;
  if (cfg.migrate_on_start) {
    auto r = storage::migrate(cfg.database_url);
    if (r.to_version != r.from_version) {
      log::info("migrate", "applied from={} to={}", r.from_version, r.to_version);
    }
  }
  const auto schema = storage::read_schema_state(cfg.database_url);
  state.schema_current = schema.version == schema.expected;
  if (!state.schema_current) {
    log::error("migrate", "schema version {} but this binary needs {}: run seqcast migrate",
               schema.version, schema.expected);
  }
  warn_if_open(cfg);

  auto cache = storage::rocksdb_replay_cache::open(
      cfg.cache_dir, schema.database_id,
      {static_cast<std::size_t>(cfg.cache_channel_messages),
       static_cast<std::uint64_t>(cfg.cache_max_bytes)});
  if (!cache) throw std::runtime_error(cache.err().message);
  if (cache.value()->emptied_on_open()) {
    log::warn("cache", "cache_dir held another database's messages; emptied it dir={}",
              cfg.cache_dir);
  }

  auto ioc = std::make_unique<net::io_context>();
  auto core = net::make_strand(*ioc);
  std::atomic<bool> posts_open{true};  // closed before the io_context is destroyed

  blocking_pool pool(cfg.database_url, cfg.db_pool_size);
  hub::hub hub(
      [&](std::function<void()> f) {
        if (posts_open) net::post(core, std::move(f));
      },
      [&](std::chrono::milliseconds delay, std::function<void()> f) {
        if (!posts_open) return;
        auto t = std::make_shared<net::steady_timer>(core, delay);
        t->async_wait([t, f = std::move(f)](boost::system::error_code ec) {
          if (!ec) f();
        });
      },
      pool, cache.value().get());
  auto committer = std::make_unique<publish::group_committer>(
      cfg.database_url,
      [&](std::vector<storage::committed_message> m) { hub.on_committed(std::move(m)); });
  http::api rest(cfg, *committer, pool, hub, state);
  http::server server(*ioc, {cfg, rest, hub, state});
  server.start(cfg.listen);
  ingest::notify_listener listener(*ioc, cfg.database_url, pool, hub, state);
  listener.start();
  retention trimmer(*ioc, cfg, pool);
  trimmer.start();
  log::info("serve", "listening address={} port={} version={}", cfg.listen, server.port(),
            SEQCAST_VERSION);

  // TODO(#5): drain (reconnect hints spread over drain_window) before exiting.
  net::signal_set signals(*ioc, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    log::info("serve", "signal={} stopping", sig);
    state.draining = true;
    server.stop();
    listener.stop();
    trimmer.stop();
    // A second signal exits at once.
    signals.async_wait([](boost::system::error_code e, int) {
      if (!e) std::_Exit(1);
    });
    ioc->stop();
  });

  const unsigned n = cfg.threads > 0 ? static_cast<unsigned>(cfg.threads)
                                     : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < n; ++i) threads.emplace_back([&] { ioc->run(); });
  ioc->run();
  for (auto& t : threads) t.join();

  // Finish queued publishes, then stop posting into the io_context before
  // destroying it (its pending handlers own sessions that unsubscribe).
  committer.reset();
  posts_open = false;
  ioc.reset();
  log::info("serve", "stopped");
  return 0;
}

int migrate(const config& cfg) {
  auto r = storage::migrate(cfg.database_url);
  if (r.from_version == r.to_version) {
    fmt::print("database is up to date (schema version {})\n", r.to_version);
  } else {
    fmt::print("migrated schema version {} -> {}\n", r.from_version, r.to_version);
  }
  return 0;
}

}  // namespace

}  // namespace seqcast

int main(int argc, char** argv) {
  using namespace seqcast;
  // libpq writes to sockets that the server may have closed.
  std::signal(SIGPIPE, SIG_IGN);
  try {
    auto cl = parse_command_line(argc, argv);
    if (cl.command == "help") {
      std::cout << help_text();
      return 0;
    }
    if (cl.command == "version") {
      std::cout << "seqcast " << SEQCAST_VERSION << "\n";
      return 0;
    }
    validate(cl.settings, cl.command);
    log::init(cl.settings.log_level, cl.settings.log_format == "json");
    if (cl.command == "serve") return serve(cl.settings);
    if (cl.command == "migrate") return migrate(cl.settings);
    if (cl.command == "replay") return cli::replay(cl);
    if (cl.command == "channels") return cli::channels(cl.settings);
    std::cerr << "seqcast: '" << cl.command << "' is not available yet\n";
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << "seqcast: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "seqcast: " << e.what() << "\n";
    return 1;
  }
}
