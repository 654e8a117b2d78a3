# The broadcasting side of bench/rails.sh: THREADS threads call
# ActionCable.server.broadcast(stream, {sent_us:, n:}) as a Rails app does, each on
# its own ActiveRecord connection, through one of three adapters:
#   pg      Action Cable's own PostgreSQL adapter (a NOTIFY per broadcast)
#   http    seqcast's adapter, http mode (a POST per broadcast to SEQCAST_URL)
#   outbox  seqcast's adapter, outbox mode (seqcast.publish() per broadcast)
# Each broadcast is its own transaction (autocommit), as a controller's or a job's is.
# Paced at RATE broadcasts/s in all when RATE > 0, else as fast as each call returns.
# Prints one JSON object: broadcasts made, seconds, broadcasts/s, errors.
$LOAD_PATH.unshift File.expand_path("../../integrations/rails/lib", __dir__)
require "json"
require "logger"
require "active_record"
require "action_cable"

mode = ARGV.fetch(0)
threads = Integer(ENV.fetch("THREADS", "1"))
seconds = Float(ENV.fetch("DURATION", "10"))
rate = Float(ENV.fetch("RATE", "0"))
channels = Integer(ENV.fetch("CHANNELS", "1"))
prefix = ENV.fetch("PREFIX", "bench-")

ActiveRecord::Base.establish_connection(ENV.fetch("DATABASE_URL") + "?pool=#{threads + 2}")
ActiveRecord::Base.logger = nil
ActionCable.server.config.logger = Logger.new(nil)
# String keys: Action Cable 6.1 reads config.cable["adapter"] (a symbol key would
# quietly fall back to Redis).
ActionCable.server.config.cable =
  case mode
  when "pg" then { "adapter" => "postgresql" }
  when "http" then { "adapter" => "seqcast", "mode" => "http", "url" => ENV.fetch("SEQCAST_URL") }
  when "outbox" then { "adapter" => "seqcast", "mode" => "outbox" }
  else abort "mode: pg, http or outbox"
  end

now_us = -> { Process.clock_gettime(Process::CLOCK_REALTIME, :microsecond) }
deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
interval = rate > 0 ? threads / rate : 0
counts = Array.new(threads, 0)
errors = Array.new(threads, 0)
started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
workers = Array.new(threads) do |t|
  Thread.new do
    ActiveRecord::Base.connection_pool.with_connection do
      next_at = Process.clock_gettime(Process::CLOCK_MONOTONIC) + interval * t / threads
      n = 0
      loop do
        now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        break if now >= deadline
        if interval > 0
          sleep(next_at - now) if next_at > now
          next_at += interval
        end
        begin
          ActionCable.server.broadcast("#{prefix}#{(t + n * threads) % channels}", { sent_us: now_us.call, n: n })
          counts[t] += 1
        rescue StandardError => e
          errors[t] += 1
          warn "broadcast: #{e.class}: #{e.message}" if errors[t] <= 3
        end
        n += 1
      end
    end
  end
end
workers.each(&:join)
elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
ActionCable.server.pubsub.shutdown rescue nil
total = counts.sum
puts JSON.generate(mode: mode, threads: threads, broadcasts: total, errors: errors.sum,
                   seconds: elapsed.round(3), broadcasts_per_s: (total / elapsed).round(1))
