# frozen_string_literal: true

require_relative "test_helper"

class HttpPublisherTest < Minitest::Test
  include SeqcastTestHelpers

  def setup
    @servers = []
    @publishers = []
    @log = StringIO.new
  end

  def teardown
    @publishers.each(&:shutdown)
    @servers.each(&:close)
  end

  def stub(script)
    StubServer.new(script).tap { |s| @servers << s }
  end

  def publisher(url, **options)
    defaults = { key: "pk", retry_window: 5, retry_base: 0.01, retry_max_delay: 0.05, logger: Logger.new(@log) }
    Seqcast::HttpPublisher.new(url: url, **defaults, **options).tap { |p| @publishers << p }
  end

  def test_publishes_the_payload_bytes_with_key_and_idempotency_key
    server = stub([[:respond, 201, ok_body(7, "room:1")]])
    payload = %({"text":"h\u00e9llo \\u003cb\\u003e","n":1})
    answer = publisher(server.url).publish("room:1", payload)
    assert_equal 7, answer["seq"]
    request = server.requests.fetch(0)
    assert_equal "POST", request.method
    assert_equal "/v1/channels/room%3A1/messages", request.path
    assert_equal payload.b, request.body.b
    assert_equal "Bearer pk", request.headers["authorization"]
    assert_equal "application/json", request.headers["content-type"]
    assert_match(/\A[0-9a-f-]{36}\z/, request.headers["idempotency-key"])
  end

  def test_no_authorization_without_a_key
    server = stub([[:respond, 201, ok_body]])
    publisher(server.url, key: nil).publish("c", "1")
    refute server.requests[0].headers.key?("authorization")
  end

  def test_a_path_in_the_url_is_kept_and_slashes_in_names_are_encoded
    server = stub([[:respond, 201, ok_body]])
    publisher("#{server.url}/seqcast/").publish("a/b", "1")
    assert_equal "/seqcast/v1/channels/a%2Fb/messages", server.requests[0].path
  end

  def test_retries_503_with_the_same_idempotency_key_then_succeeds
    server = stub([[:respond, 503, error_body("unavailable")], [:respond, 503, error_body("unavailable")],
                   [:respond, 201, ok_body(3)]])
    pub = publisher(server.url)
    assert_equal 3, pub.publish("c", %("x"))["seq"]
    assert_equal 3, server.requests.size
    assert_equal 1, server.requests.map { |r| r.headers["idempotency-key"] }.uniq.size
    assert_equal 2, pub.stats[:retries]
    assert_match(/503 unavailable.*retrying in/, @log.string)
    refute_includes @log.string, "pk" # the key is never logged
  end

  def test_retries_a_dropped_connection_and_a_lost_answer_is_answered_200
    # The first request reaches the server, whose answer is lost (the
    # connection drops); the retry is answered 200 with the original seq.
    server = stub([[:drop], [:respond, 200, ok_body(5)]])
    answer = publisher(server.url).publish("c", "1")
    assert_equal 5, answer["seq"]
    assert_equal 2, server.requests.size
    assert_equal server.requests[0].headers["idempotency-key"], server.requests[1].headers["idempotency-key"]
    assert_equal server.requests[0].body, server.requests[1].body
  end

  def test_retries_502_and_504
    server = stub([[:respond, 502, "<html>bad gateway</html>"], [:respond, 504, ""], [:respond, 201, ok_body]])
    publisher(server.url).publish("c", "1")
    assert_equal 3, server.requests.size
  end

  def test_a_refused_connection_is_retried_until_a_node_listens
    port = StubServer.closed_port
    pub = publisher("http://127.0.0.1:#{port}", retry_window: 10)
    server = Thread.new do
      sleep 0.01 until @log.string.include?("retrying") # the first attempt was refused
      listener = TCPServer.new("127.0.0.1", port)
      socket = listener.accept
      socket.gets("\r\n")
      length = 0
      while (line = socket.gets("\r\n")) != "\r\n"
        length = line.split(":", 2)[1].to_i if line.downcase.start_with?("content-length")
      end
      socket.read(length)
      body = JSON.generate(ok_body(9))
      socket.write("HTTP/1.1 201 Created\r\nContent-Length: #{body.bytesize}\r\nConnection: close\r\n\r\n#{body}")
      socket.close
      listener.close
    end
    assert_equal 9, pub.publish("c", "1")["seq"]
    server.join
    assert_match(/connection_failed|ECONNREFUSED/, @log.string)
  end

  def test_a_node_that_stays_down_raises_publish_error_after_the_window
    pub = publisher("http://127.0.0.1:#{StubServer.closed_port}", retry_window: 0.4)
    started = monotonic
    error = assert_raises(Seqcast::PublishError) { pub.publish("c", "1") }
    elapsed = monotonic - started
    assert_operator elapsed, :>=, 0.4
    assert_operator elapsed, :<, 3
    assert_nil error.status
    assert_equal "connection_failed", error.code
    assert_operator error.attempts, :>, 2
    assert_match(/within 0.4 s/, error.message)
    assert_match(/ECONNREFUSED|refused/i, error.message)
  end

  def test_503_for_the_whole_window_raises_with_status_and_code
    server = stub([[:respond, 503, error_body("unavailable", "the database is unavailable; retry")]])
    error = assert_raises(Seqcast::PublishError) { publisher(server.url, retry_window: 0.3).publish("c", "1") }
    assert_equal 503, error.status
    assert_equal "unavailable", error.code
    assert_equal server.requests.size, error.attempts
  end

  def test_zero_window_means_one_attempt
    server = stub([[:respond, 503, error_body("unavailable")]])
    assert_raises(Seqcast::PublishError) { publisher(server.url, retry_window: 0).publish("c", "1") }
    assert_equal 1, server.requests.size
  end

  def test_client_errors_raise_at_once
    {
      413 => "payload_too_large", 400 => "invalid_channel", 401 => "unauthorized", 403 => "forbidden",
      409 => "idempotency_key_reused", 500 => "internal"
    }.each do |status, code|
      server = stub([[:respond, status, error_body(code, "because")], [:respond, 201, ok_body]])
      started = monotonic
      error = assert_raises(Seqcast::PublishError, code) { publisher(server.url).publish("c", "1") }
      assert_operator monotonic - started, :<, 1
      assert_equal status, error.status
      assert_equal code, error.code
      assert_equal 1, error.attempts
      assert_equal 1, server.requests.size, code
      assert_match(/#{status} #{code}: because/, error.message)
    end
  end

  def test_an_error_body_that_is_not_json
    server = stub([[:respond, 404, "nope"]])
    error = assert_raises(Seqcast::PublishError) { publisher(server.url).publish("c", "1") }
    assert_equal "http_404", error.code
  end

  def test_bad_channel_or_payload_raise_before_any_request
    server = stub([[:respond, 201, ok_body]])
    pub = publisher(server.url)
    assert_raises(ArgumentError) { pub.publish("bad name", "1") }
    assert_raises(ArgumentError) { pub.publish("", "1") }
    assert_raises(ArgumentError) { pub.publish("c", { a: 1 }) }
    assert_raises(ArgumentError) { pub.publish_batch([["ok", "1"], ["bad#", "2"]]) }
    assert_empty server.requests
    assert_equal 0, server.connections
  end

  def test_keeps_the_connection_alive
    server = stub([[:respond, 201, ok_body]])
    pub = publisher(server.url)
    5.times { pub.publish("c", "1") }
    assert_equal 5, server.requests.size
    assert_equal 1, server.connections
  end

  def test_reconnects_after_the_server_closes
    server = stub([[:close_after, 201, ok_body(1)], [:respond, 201, ok_body(2)]])
    pub = publisher(server.url)
    assert_equal 1, pub.publish("c", "1")["seq"]
    assert_equal 2, pub.publish("c", "2")["seq"]
    assert_equal 2, server.connections
  end

  def test_thread_safe
    counter = 0
    lock = Mutex.new
    answer = ->(_request) { [:respond, 201, ok_body(lock.synchronize { counter += 1 })] }
    server = stub([answer])
    pub = publisher(server.url)
    threads = 8.times.map do |t|
      Thread.new { 25.times.map { |i| pub.publish("c", %({"t":#{t},"i":#{i}}))["seq"] } }
    end
    seqs = threads.flat_map(&:value)
    assert_equal (1..200).to_a, seqs.sort
    assert_equal 200, server.requests.map { |r| r.headers["idempotency-key"] }.uniq.size
    assert_equal 200, server.requests.map(&:body).uniq.size
    assert_operator server.connections, :<=, 8
    assert_equal 200, pub.stats[:published]
  end

  def test_batch_is_one_request_with_keys_and_raw_payloads
    results = { "results" => [ok_body(1, "a"), ok_body(1, "b/c"), ok_body(2, "a")] }
    server = stub([[:respond, 503, error_body("unavailable")], [:respond, 201, results]])
    items = [["a", %({"x":"\\u003cp\\u003e"})], ["b/c", "2"], ["a", %("caf\u00e9")]]
    answer = publisher(server.url).publish_batch(items)
    assert_equal results["results"], answer
    assert_equal 2, server.requests.size
    assert_equal server.requests[0].body, server.requests[1].body
    request = server.requests[1]
    assert_equal "/v1/publish", request.path
    assert_nil request.headers["idempotency-key"]
    body = request.body.force_encoding("UTF-8")
    parsed = JSON.parse(body)["messages"]
    assert_equal %w[a b/c a], parsed.map { |m| m["channel"] }
    assert_equal 3, parsed.map { |m| m["idempotency_key"] }.uniq.size
    # payloads are embedded byte for byte
    assert_includes body, %("data":{"x":"\\u003cp\\u003e"}})
    assert_includes body, %("data":"caf\u00e9"})
  end

  def test_large_bodies_wait_for_100_continue_and_a_413_comes_before_the_body
    server = stub([[:respond, 201, ok_body]])
    pub = publisher(server.url)
    big = JSON.generate("x" * (200 * 1024))
    started = monotonic
    pub.publish("c", big)
    assert_operator monotonic - started, :<, 1.5 # the 100 Continue came, no continue_timeout wait
    assert_equal "100-continue", server.requests[0].headers["expect"]
    assert_equal big, server.requests[0].body
    pub.publish("c", "1")
    refute server.requests[1].headers.key?("expect")

    server.script = [[:refuse_body, 413, error_body("payload_too_large", "payload exceeds 1048576 bytes")]]
    error = assert_raises(Seqcast::PublishError) { pub.publish("c", JSON.generate("y" * (4 * 1024 * 1024))) }
    assert_equal 413, error.status
    assert_equal "payload_too_large", error.code
    assert_equal 1, error.attempts
    assert_nil server.requests[2].body # never sent
  end

  def test_an_untrusted_certificate_raises_at_once
    key = OpenSSL::PKey::RSA.new(2048)
    cert = OpenSSL::X509::Certificate.new
    cert.version = 2
    cert.serial = 1
    cert.subject = cert.issuer = OpenSSL::X509::Name.parse("/CN=127.0.0.1")
    cert.public_key = key.public_key
    cert.not_before = Time.now - 60
    cert.not_after = Time.now + 3600
    cert.sign(key, OpenSSL::Digest.new("SHA256"))
    context = OpenSSL::SSL::SSLContext.new
    context.cert = cert
    context.key = key
    tcp = TCPServer.new("127.0.0.1", 0)
    server = OpenSSL::SSL::SSLServer.new(tcp, context)
    acceptor = Thread.new do
      loop do
        socket = server.accept
        socket.close
      rescue OpenSSL::SSL::SSLError, SystemCallError
        next
      end
    rescue IOError
      nil
    end
    started = monotonic
    error = assert_raises(Seqcast::PublishError) do
      publisher("https://127.0.0.1:#{tcp.addr[1]}", retry_window: 5).publish("c", "1")
    end
    assert_operator monotonic - started, :<, 2
    assert_equal "tls_failed", error.code
    assert_equal 1, error.attempts
  ensure
    acceptor&.kill
    tcp&.close
  end

  def test_shutdown_closes_idle_connections
    server = stub([[:respond, 201, ok_body]])
    pub = publisher(server.url)
    pub.publish("c", "1")
    pub.shutdown
    pub.publish("c", "2") # still works, on a new connection
    assert_equal 2, server.connections
  end
end
