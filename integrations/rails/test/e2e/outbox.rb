# frozen_string_literal: true

# outbox-mode scenarios (seqcast.publish inside the app's transaction):
# ruby outbox.rb SCENARIO CHANNEL [N]
#   rollback_then_commit   one broadcast in a transaction that rolls back, then one in a transaction that commits
#   commit                 N broadcasts in one committed transaction
#   errors                 a bad name, a payload over the limit, a payload that is not JSON
# Needs DATABASE_URL (the node's database) and SEQCAST_TEST_MODE=outbox; the
# schema is SEQCAST_TEST_SCHEMA (default seqcast).
require_relative "helper"

scenario, channel, n = ARGV
connect_database
overrides = { mode: "outbox" }
overrides[:schema] = ENV["SEQCAST_TEST_SCHEMA"] if ENV["SEQCAST_TEST_SCHEMA"]
configure_cable(overrides)

case scenario
when "rollback_then_commit"
  ActiveRecord::Base.transaction do
    ActionCable.server.broadcast(channel, { "state" => "rolled back" })
    raise ActiveRecord::Rollback
  end
  ActiveRecord::Base.transaction do
    ActionCable.server.broadcast(channel, { "state" => "committed" })
  end
  result("ok" => true)
when "commit"
  sent = []
  ActiveRecord::Base.transaction do
    Integer(n).times do |i|
      message = { "i" => i + 1, "html" => "<p>#{i + 1}</p>" }
      ActionCable.server.broadcast(channel, message)
      sent << ActiveSupport::JSON.encode(message)
    end
  end
  result("payloads" => sent)
when "errors"
  outcomes = {
    "bad_name" => capture_error { ActionCable.server.broadcast("#{channel} with spaces", { "a" => 1 }) },
    "too_big" => capture_error do
      ActiveRecord::Base.transaction { ActionCable.server.broadcast(channel, { "blob" => "x" * (1024 * 1024) }) }
    end,
    "not_json" => capture_error do
      ActiveRecord::Base.transaction { ActionCable.server.broadcast(channel, "{not json", coder: nil) }
    end,
  }
  # The connection is still usable after those (each error rolled its transaction back).
  ActiveRecord::Base.transaction { ActionCable.server.broadcast(channel, { "after" => "errors" }) }
  result("outcomes" => outcomes)
else
  abort "unknown scenario #{scenario.inspect}"
end
