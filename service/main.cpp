// seqcast's entry point: settings → objects → I/O threads → signals. No logic of its own.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "auth/authenticator.hpp"
#include "blocking_pool.hpp"
#include "cli.hpp"
#include "config.hpp"
#include "drain/drainer.hpp"
#include "http/api.hpp"
#include "http/server.hpp"
#include "hub/sharded_hub.hpp"
#include "hub/storage_history.hpp"
#include "ingest/notify_listener.hpp"
#include "io_threads.hpp"
#include "log.hpp"
#include "metrics/node_metrics.hpp"
#include "metrics/registry.hpp"
#include "migrator.hpp"
#include "node_identity.hpp"
#include "node_state.hpp"
#include "presence.hpp"
#include "publish/group_committer.hpp"
#include "retention.hpp"
#include "rocksdb_replay_cache.hpp"
#include "timeline.hpp"
#include "util/backoff.hpp"
#include "util/ticker.hpp"

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

std::int64_t unix_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

int serve(const config& cfg) {
  const std::int64_t started_at_us = unix_us();
  // Destruction order matters: what sessions touch when the io_context
  // destroys them (state, registry, hub) is declared before it.
  node_state state;
  drain::session_registry sessions;
  metrics::registry metric_registry;
  node_identity self;  // completed once the listening port is known
  // A node started while its database restarts or fails over waits for it rather
  // than exiting (SIGTERM still stops it at once).
  util::backoff startup_retry(std::chrono::milliseconds(200), std::chrono::milliseconds(5000));
  const storage::database db = cfg.database();
  for (std::string why; !storage::database_reachable(db, why);) {
    const auto delay = startup_retry.next();
    log::warn("serve", "database unreachable, waiting error=\"{}\" retry_in_ms={}", why,
              delay.count());
    std::this_thread::sleep_for(delay);
  }
  if (cfg.migrate_on_start) {
    auto r = storage::migrate(db);
    if (r.moved_from_public) {
      log::info("migrate", "moved seqcast's tables from schema public into schema={}", db.schema);
    }
    if (r.to_version != r.from_version) {
      log::info("migrate", "applied from={} to={}", r.from_version, r.to_version);
    }
  }
  const auto schema = storage::read_schema_state(db);
  state.schema_current = schema.version == schema.expected;
  if (!state.schema_current) {
    log::error("migrate", "schema version {} but this binary needs {}: run seqcast migrate",
               schema.version, schema.expected);
  } else {
    storage::apply_settings(db, cfg.max_payload_bytes);
  }
  warn_if_open(cfg);
  const auth::authenticator authenticator(cfg);

  const std::int32_t cache_timeline = storage::current_timeline();
  auto cache = storage::rocksdb_replay_cache::open(
      cfg.cache_dir, storage::rocksdb_replay_cache::identity(schema.database_id, cache_timeline),
      {static_cast<std::size_t>(cfg.cache_channel_messages),
       static_cast<std::uint64_t>(cfg.cache_max_bytes)});
  if (!cache) throw std::runtime_error(cache.err().message);
  if (cache.value()->emptied_on_open()) {
    log::warn("cache",
              "cache_dir held messages of another database or server timeline (a failover); "
              "emptied it dir={}",
              cfg.cache_dir);
  }

  const unsigned n_threads = cfg.threads > 0 ? static_cast<unsigned>(cfg.threads)
                                             : std::max(1u, std::thread::hardware_concurrency());
  auto io = std::make_unique<io_threads>(n_threads);
  auto* ioc = &io->main();
  std::atomic<bool> posts_open{true};  // closed before the io_context is destroyed

  blocking_pool pool(db, cfg.db_pool_size);
  // The hub, sharded by channel: one shard per I/O thread, on a strand of that thread
  // (hub/sharded_hub.hpp), each with its own view of the history.
  std::optional<std::vector<net::strand<net::io_context::executor_type>>> hub_strands(
      std::in_place);
  for (unsigned k = 0; k < n_threads; ++k) hub_strands->push_back(net::make_strand(io->at(k)));
  std::vector<std::unique_ptr<hub::storage_history>> histories;
  auto at_home = [&](std::size_t home, std::chrono::milliseconds delay, std::function<void()> f) {
    if (!posts_open) return;
    if (delay.count() <= 0) return net::post(io->at(home), std::move(f));
    auto t = std::make_shared<net::steady_timer>(io->at(home), delay);
    t->async_wait([t, f = std::move(f)](boost::system::error_code ec) {
      if (!ec) f();
    });
  };
  const hub::hub_limits hub_limits{.coalesce = std::chrono::milliseconds(cfg.coalesce_ms),
                                   .homes = n_threads};
  hub::sharded_hub hub(
      n_threads, at_home, hub_limits.homes, hub_limits.coalesce,
      [&](std::size_t k, hub::hub_shared shared) {
        auto on_shard = [&, k](std::function<void()> f) {
          if (posts_open) net::post((*hub_strands)[k], std::move(f));
        };
        auto after = [&, k](std::chrono::milliseconds delay, std::function<void()> f) {
          if (!posts_open) return;
          auto t = std::make_shared<net::steady_timer>((*hub_strands)[k], delay);
          t->async_wait([t, f = std::move(f)](boost::system::error_code ec) {
            if (!ec) f();
          });
        };
        histories.push_back(std::make_unique<hub::storage_history>(pool, cache.value().get(),
                                                                   on_shard, schema.database_id));
        return std::make_unique<hub::hub>(on_shard, after, *histories.back(), hub_limits, shared);
      });
  // A failover noticed by any new connection (storage/timeline.hpp) reloads every
  // channel; so does one that happened since the cache was opened. Unset before the
  // hub goes (pool threads may still connect).
  storage::on_timeline_change([&hub](std::int32_t from, std::int32_t to) {
    log::warn("failover", "the database is on another server timeline from={} to={}", from, to);
    hub.on_timeline_changed();
  });
  struct unset_on_exit {
    ~unset_on_exit() { storage::on_timeline_change(nullptr); }
  } const unset_timeline_change;
  if (storage::current_timeline() != cache_timeline) hub.on_timeline_changed();
  auto committer = std::make_unique<publish::group_committer>(
      db, [&](std::vector<storage::committed_message> m) { hub.on_committed(std::move(m)); },
      publish::committer_limits{},
      [&](std::size_t messages, std::chrono::microseconds took) {
        state.batch_messages.observe(static_cast<double>(messages));
        state.commit_seconds.observe(static_cast<double>(took.count()) / 1e6);
      },
      [&](std::vector<storage::channel_advance> a, bool expected) {
        hub.on_local(std::move(a), expected);
      });
  std::optional<drain::drainer> drainer(std::in_place, *ioc, sessions);
  metrics::declare_node_metrics(metric_registry,
                                {state, hub, pool, cache.value().get(), *committer});
  http::api rest(cfg, authenticator, *committer, pool, hub, state, *drainer, metric_registry, self);
  // Sessions keep a reference to this while the io_context destroys them.
  const http::services services{{cfg, authenticator, hub, state, sessions}, rest};
  {
    http::server server(*io, services);
    server.start(cfg.listen);
    // Before any request is served: the I/O threads run only below.
    self = make_node_identity(cfg, host_name(), server.port(), SEQCAST_VERSION, started_at_us);
    presence here(pool, self, state);
    util::ticker heartbeat(*ioc, presence::period, [&here] { here.tick(); });
    heartbeat.start();
    util::ticker sampler(*ioc, metric_registry.interval(),
                         [&metric_registry] { metric_registry.sample(unix_us() / 1000); });
    sampler.start();
    ingest::notify_listener listener(*ioc, db, pool, hub, state,
                                     [&committer] { committer->wake_outbox(); });
    listener.start();
    retention trimmer(*ioc, cfg, pool);
    trimmer.start();
    log::info("serve", "listening address={} port={} version={} node={} advertise={}", cfg.listen,
              server.port(), SEQCAST_VERSION, self.name, self.address);

    // SIGTERM/SIGINT: out of the load balancer at once (/readyz 503); after
    // drain_delay, refuse new connections and tell clients to reconnect, spread
    // over drain_window; answer every publish in flight; exit 0. A second
    // signal exits at once.
    net::signal_set signals(*ioc, SIGINT, SIGTERM);
    net::steady_timer drain_delay(*ioc);
    net::steady_timer exit_poll(*ioc);
    const auto exit_deadline = std::make_shared<std::chrono::steady_clock::time_point>();
    std::function<void()> wait_for_answers = [&] {
      if (state.requests_in_flight.load() > 0 &&
          std::chrono::steady_clock::now() < *exit_deadline) {
        exit_poll.expires_after(std::chrono::milliseconds(20));
        exit_poll.async_wait([&](boost::system::error_code) { wait_for_answers(); });
        return;
      }
      io->stop();
    };
    auto finish = [&] {
      server.stop();
      listener.stop();
      trimmer.stop();
      heartbeat.stop();
      sampler.stop();
      *exit_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
      wait_for_answers();
    };
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      log::info("serve", "signal={} draining delay_s={} window_s={}", sig, cfg.drain_delay_seconds,
                cfg.drain_window_seconds);
      state.shutting_down = true;
      state.draining = true;
      signals.async_wait([](boost::system::error_code e, int) {
        if (!e) std::_Exit(1);
      });
      drain_delay.expires_after(std::chrono::seconds(cfg.drain_delay_seconds));
      drain_delay.async_wait([&](boost::system::error_code) {
        state.upgrades_closed = true;
        drainer->start(std::chrono::seconds(cfg.drain_window_seconds), finish);
      });
    });

    io->run();

    // Commit what is queued while the I/O objects still exist.
    committer.reset();
  }
  // Stop posting into the io_context, then destroy it: its pending handlers
  // own sessions, whose destructors reach the hub, the registry and
  // `services`. Objects holding I/O objects go before it.
  posts_open = false;
  pool.stop();
  drainer.reset();
  hub_strands.reset();
  io->destroy();
  log::info("serve", "stopped");
  return 0;
}

int migrate(const config& cfg) {
  auto r = storage::migrate(cfg.database());
  if (r.moved_from_public) {
    fmt::print("moved seqcast's tables from schema public into schema {}\n", cfg.database_schema);
  }
  storage::apply_settings(cfg.database(), cfg.max_payload_bytes);
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
    if (cl.command == "drain") return cli::drain(cl);
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
