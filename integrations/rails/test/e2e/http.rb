# frozen_string_literal: true

# http-mode scenarios: ruby http.rb SCENARIO ARGS…
#   many CHANNEL N BIG_BYTES   N small broadcasts and one of about BIG_BYTES
#   one CHANNEL                one broadcast (the restart and lost-answer tests)
#   turbo CHANNEL              a Turbo Streams broadcast (an HTML string)
#   sign NAME KEY_HEX          prints the name signed as turbo-rails signs it
#   batch CHANNEL_A CHANNEL_B N   N broadcasts alternating between two channels, in one Seqcast.batch
require_relative "helper"

scenario, *args = ARGV
case scenario
when "many"
  channel, n, big = args[0], Integer(args[1]), Integer(args[2])
  pubsub = configure_cable
  sent = []
  answers = []
  n.times do |i|
    message = { "i" => i + 1, "text" => "héllo <b>#{i + 1}</b> & \"quotes\" \u2028 / \\", "at" => [i, nil, true, 1.5] }
    answers << ActionCable.server.broadcast(channel, message)
    sent << ActiveSupport::JSON.encode(message)
  end
  blob = { "blob" => ("0123456789abcdef" * ((big / 16) + 1))[0, big] + "é<>&" }
  answers << ActionCable.server.broadcast(channel, blob)
  sent << ActiveSupport::JSON.encode(blob)
  result("payloads" => sent, "seqs" => answers.map { |a| a && a["seq"] }, "stats" => pubsub.publisher.stats)
when "one"
  channel = args[0]
  pubsub = configure_cable
  started = monotonic
  answer = ActionCable.server.broadcast(channel, { "during" => "restart", "n" => 1 })
  result("answer" => answer, "seconds" => monotonic - started, "stats" => pubsub.publisher.stats)
when "turbo"
  channel = args[0]
  pubsub = configure_cable
  html = %(<turbo-stream action="append" target="log"><template><p>1</p></template></turbo-stream>)
  answer = ActionCable.server.broadcast(channel, html)
  result("answer" => answer, "payload" => ActiveSupport::JSON.encode(html), "stats" => pubsub.publisher.stats)
when "sign"
  name, key_hex = args
  result("signed" => Seqcast.signed_stream_name(name, key: [key_hex].pack("H*")))
when "batch"
  a, b, n = args[0], args[1], Integer(args[2])
  pubsub = configure_cable
  before = pubsub.publisher.stats
  inner = []
  Seqcast.batch do
    n.times do |i|
      inner << ActionCable.server.broadcast(i.even? ? a : b, { "i" => i + 1, "html" => "<p>#{i + 1}</p>" })
    end
  end
  after = pubsub.publisher.stats
  result("requests" => after[:requests] - before[:requests], "published" => after[:published] - before[:published],
         "inner" => inner)
else
  abort "unknown scenario #{scenario.inspect}"
end
