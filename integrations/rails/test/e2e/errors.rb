# frozen_string_literal: true

# What the caller of ActionCable.server.broadcast sees when seqcast does not
# take a broadcast: ruby errors.rb CASE CHANNEL
#   bad_name    a channel name outside seqcast's alphabet (no request is made)
#   too_big     a payload over max_payload_bytes (413)
#   wrong_key   SEQCAST_PUBLISH_KEY is not a key of the node (401)
#   down        SEQCAST_URL points where no node listens (retried, then PublishError)
#   subscribe   Action Cable asks the adapter to subscribe
require_relative "helper"

kase, channel = ARGV
pubsub = configure_cable
outcome =
  case kase
  when "bad_name"
    capture_error { ActionCable.server.broadcast("#{channel} with spaces", { "a" => 1 }) }
  when "too_big"
    capture_error { ActionCable.server.broadcast(channel, { "blob" => "x" * (1024 * 1024) }) }
  when "wrong_key", "down"
    capture_error { ActionCable.server.broadcast(channel, { "a" => 1 }) }
  when "subscribe"
    capture_error { pubsub.subscribe(channel, ->(_) {}) }
  else
    abort "unknown case #{kase.inspect}"
  end
result("outcome" => outcome, "stats" => pubsub.publisher.stats)
