# frozen_string_literal: true

require_relative "test_helper"
require "active_support/all" # what a Rails app has loaded
require "action_cable"
require "active_support/core_ext/hash/indifferent_access"
require "action_cable/subscription_adapter/seqcast"

class AdapterTest < Minitest::Test
  include SeqcastTestHelpers

  TURBO_HTML = %(<turbo-stream action="append" target="log"><template><p>1 & 2</p></template></turbo-stream>)

  def setup
    @log = StringIO.new
    @stub = nil
  end

  def teardown
    @server&.restart
    @stub&.close
  end

  # An Action Cable server configured as config/cable.yml would, talking to a stub seqcast.
  def cable(settings = {}, script: [[:respond, 201, ok_body]])
    @stub = StubServer.new(script)
    config = ActionCable::Server::Configuration.new
    config.logger = Logger.new(@log)
    config.cable = { "adapter" => "seqcast", "url" => @stub.url, "key" => "pk" }.merge(settings).with_indifferent_access
    @server = ActionCable::Server::Base.new(config: config)
  end

  def test_adapter_is_found_by_name
    server = cable
    assert_instance_of ActionCable::SubscriptionAdapter::Seqcast, server.pubsub
  end

  def test_broadcast_posts_what_the_coder_encoded
    server = cable
    server.broadcast("room:1", { text: "<b>&</b> é", n: 1 })
    request = @stub.requests.fetch(0)
    assert_equal "/v1/channels/room%3A1/messages", request.path
    assert_equal %({"text":"\\u003cb\\u003e\\u0026\\u003c/b\\u003e é","n":1}), request.body.force_encoding("UTF-8")
    assert_equal ActiveSupport::JSON.encode({ text: "<b>&</b> é", n: 1 }), request.body.force_encoding("UTF-8")
  end

  def test_turbo_payload_is_a_json_string_of_escaped_html
    server = cable
    server.broadcast("Z2lkOi8vbXlhcHAvUm9vbS8x:messages", TURBO_HTML)
    expected = '"\u003cturbo-stream action=\"append\" target=\"log\"\u003e\u003ctemplate\u003e\u003cp\u003e1 ' \
               '\u0026 2\u003c/p\u003e\u003c/template\u003e\u003c/turbo-stream\u003e"'
    assert_equal expected, @stub.requests.fetch(0).body
    assert_equal TURBO_HTML, JSON.parse(@stub.requests.fetch(0).body)
  end

  def test_broadcast_returns_the_answer
    server = cable(script: [[:respond, 201, ok_body(4, "c")]])
    assert_equal 4, server.pubsub.broadcast("c", "1")["seq"]
  end

  def test_errors_reach_the_caller
    server = cable(script: [[:respond, 413, error_body("payload_too_large", "payload exceeds 1048576 bytes")]])
    error = assert_raises(Seqcast::PublishError) { server.broadcast("c", { big: "x" }) }
    assert_equal 413, error.status
    assert_equal "payload_too_large", error.code
    error = assert_raises(ArgumentError) { server.broadcast("room 1", { a: 1 }) }
    assert_match(/A-Z a-z 0-9/, error.message)
    assert_equal 1, @stub.requests.size
  end

  def test_retry_window_from_cable_yml
    server = cable({ "url" => "http://127.0.0.1:#{StubServer.closed_port}", "retry_window" => "0.3" })
    started = monotonic
    error = assert_raises(Seqcast::PublishError) { server.broadcast("c", { a: 1 }) }
    assert_operator monotonic - started, :>=, 0.3
    assert_equal "connection_failed", error.code
    assert_match(/\[seqcast\] broadcast to c failed .*retrying/, @log.string)
  end

  def test_subscribe_and_unsubscribe_explain_where_browsers_go
    server = cable
    [-> { server.pubsub.subscribe("c", proc {}) }, -> { server.pubsub.unsubscribe("c", proc {}) }].each do |call|
      error = assert_raises(NotImplementedError) { call.call }
      assert_match(%r{connect to seqcast \(its /cable}, error.message)
      assert_match(/config\.action_cable\.mount_path = nil/, error.message)
    end
  end

  def test_channel_prefix_is_refused
    server = cable({ "channel_prefix" => "app_production" })
    error = assert_raises(Seqcast::ConfigurationError) { server.pubsub }
    assert_match(/channel_prefix/, error.message)
  end

  def test_batch_sends_one_request_in_order
    results = { "results" => (1..3).map { |i| ok_body(i, "c") } }
    server = cable(script: [[:respond, 201, results]])
    value = Seqcast.batch do
      assert_nil server.pubsub.broadcast("c", "1")
      server.broadcast("c", { i: 2 })
      Seqcast.batch { server.broadcast("c", TURBO_HTML) } # nested: joins the outer batch
      :done
    end
    assert_equal :done, value
    assert_equal 1, @stub.requests.size
    request = @stub.requests[0]
    assert_equal "/v1/publish", request.path
    messages = JSON.parse(request.body)["messages"]
    assert_equal [1, { "i" => 2 }, TURBO_HTML], messages.map { |m| m["data"] }
    assert_includes request.body, %("data":{"i":2}})
    assert_equal 3, messages.map { |m| m["idempotency_key"] }.uniq.size
    assert_nil Seqcast.current_batch
  end

  def test_batch_through_the_adapter_method
    server = cable(script: [[:respond, 201, { "results" => [ok_body] }]])
    server.pubsub.batch { server.broadcast("c", 1) }
    assert_equal ["/v1/publish"], @stub.requests.map(&:path)
  end

  def test_batch_that_raises_sends_nothing
    server = cable
    assert_raises(RuntimeError) do
      Seqcast.batch do
        server.broadcast("c", 1)
        raise "boom"
      end
    end
    assert_empty @stub.requests
    assert_nil Seqcast.current_batch
  end

  def test_empty_batch_sends_nothing
    cable
    assert_equal 1, Seqcast.batch { 1 }
    assert_empty @stub.requests
  end

  def test_batch_failure_raises_from_the_block
    server = cable(script: [[:respond, 413, error_body("payload_too_large")]])
    error = assert_raises(Seqcast::PublishError) { Seqcast.batch { server.broadcast("c", 1) } }
    assert_equal "payload_too_large", error.code
  end

  def test_batches_are_per_thread
    results = { "results" => [ok_body] }
    server = cable(script: [[:respond, 201, results]])
    Seqcast.batch do
      Thread.new { server.broadcast("other", 1) }.join # not in this thread's batch: sent at once
      assert_equal 1, @stub.requests.size
      server.broadcast("c", 2)
    end
    assert_equal ["/v1/channels/other/messages", "/v1/publish"], @stub.requests.map(&:path)
  end

  def test_shutdown_on_restart_closes_connections
    server = cable
    server.broadcast("c", 1)
    server.restart
    server.broadcast("c", 2) # a new adapter, a new connection
    assert_equal 2, @stub.connections
  end

  def test_outbox_mode_checks_names_before_any_sql
    server = cable({ "mode" => "outbox", "url" => nil })
    assert_instance_of Seqcast::OutboxPublisher, server.pubsub.publisher
    assert_raises(ArgumentError) { server.broadcast("no spaces please", 1) }
  end
end
