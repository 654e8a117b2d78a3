# frozen_string_literal: true

# Shared setup of the end-to-end scripts, which tests/rails/adapter.test.mjs
# runs as `ruby -I integrations/rails/lib integrations/rails/test/e2e/<script>.rb …`
# with these variables:
#   SEQCAST_URL, SEQCAST_PUBLISH_KEY   the node and a publish key
#   SEQCAST_TEST_MODE                  "http" (default) or "outbox"
#   SEQCAST_TEST_RETRY_WINDOW          seconds (default 30)
#   DATABASE_URL                       outbox mode: the database the node uses
# Each script prints one line "RESULT <json>" on stdout; the adapter's log
# (retries included) goes to stderr.
require "active_support/all" # what a Rails app has loaded
require "action_cable"
require "logger"
require "json"
require "seqcast/rails"

$stdout.sync = true
$stderr.sync = true

def configure_cable(overrides = {})
  logger = Logger.new($stderr)
  logger.level = Logger::INFO
  ActionCable.server.config.logger = logger
  cable = {
    adapter: "seqcast",
    url: ENV["SEQCAST_URL"],
    key: ENV["SEQCAST_PUBLISH_KEY"],
    mode: ENV.fetch("SEQCAST_TEST_MODE", "http"),
    retry_window: ENV.fetch("SEQCAST_TEST_RETRY_WINDOW", "30"),
  }.merge(overrides)
  # cable.yml arrives with indifferent access; Action Cable 6.1 reads "adapter" by its String key.
  ActionCable.server.config.cable = cable.with_indifferent_access
  ActionCable.server.pubsub
end

def connect_database
  require "active_record"
  ActiveRecord::Base.establish_connection(ENV.fetch("DATABASE_URL"))
  ActiveRecord::Base.connection.execute("SELECT 1")
end

def monotonic
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

def result(hash)
  puts "RESULT #{JSON.generate(hash)}"
end

# Runs the block; returns {"error" => class, "code", "status", "attempts", "message", "seconds"}
# for an exception, or nil.
def capture_error
  started = monotonic
  yield
  nil
rescue StandardError, NotImplementedError => e
  {
    "error" => e.class.name,
    "ancestors" => e.class.ancestors.map(&:name).compact.first(6),
    "code" => e.respond_to?(:code) ? e.code : nil,
    "status" => e.respond_to?(:status) ? e.status : nil,
    "attempts" => e.respond_to?(:attempts) ? e.attempts : nil,
    "message" => e.message,
    "seconds" => monotonic - started,
  }
end
