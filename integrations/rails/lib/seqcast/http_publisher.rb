# frozen_string_literal: true

require "json"
require "net/http"
require "openssl"
require "securerandom"
require "uri"
require_relative "errors"
require_relative "names"
require_relative "version"

module Seqcast
  # Publishes to seqcast's HTTP API, synchronously: a call returns once
  # seqcast answered 201 (the message is committed in PostgreSQL) or 200 (a
  # retry of a message already committed), and raises otherwise.
  #
  # Retries: an answer of 502, 503 or 504, and a connection that is refused,
  # dropped or times out, are retried with exponential backoff (jittered,
  # 50 ms doubling up to 2 s) until `retry_window` seconds have passed since
  # the first attempt; then PublishError. Every attempt of one publish carries
  # the same idempotency key, so a retry of a publish whose answer was lost is
  # answered 200 with the original seq and publishes nothing new. Any other
  # answer raises at once.
  #
  # Thread-safe: each call checks a kept-alive connection out of a small pool
  # (a new one when none is idle), so concurrent broadcasts never wait for
  # one another and a broadcast that is retrying holds up nobody else. After
  # a fork the child drops the connections it inherited without closing them.
  class HttpPublisher
    RETRY_STATUSES = [502, 503, 504].freeze
    NETWORK_ERRORS = [
      Errno::ECONNREFUSED, Errno::ECONNRESET, Errno::ECONNABORTED, Errno::EPIPE,
      Errno::EHOSTUNREACH, Errno::ENETUNREACH, Errno::ETIMEDOUT, Errno::EADDRNOTAVAIL,
      EOFError, IOError, SocketError, Timeout::Error, # Net::OpenTimeout, ReadTimeout, WriteTimeout
    ].freeze
    CONTENT_TYPE = "application/json"
    # A body larger than this is sent with "Expect: 100-continue": seqcast
    # refuses one over its limit (413) before the body is on the wire,
    # instead of closing on a half-sent body (which would look like a dropped
    # connection, and be retried).
    EXPECT_CONTINUE_BYTES = 64 * 1024

    attr_reader :url, :retry_window

    def initialize(url:, key: nil, retry_window: 30.0, open_timeout: 5.0, read_timeout: 15.0,
                   write_timeout: 15.0, logger: nil, retry_base: 0.05, retry_max_delay: 2.0,
                   max_idle: 16, keep_alive_timeout: 30)
      @uri = URI.parse(url.to_s)
      unless @uri.is_a?(URI::HTTP) && @uri.host && !@uri.host.empty?
        raise ConfigurationError, "seqcast url must be an http:// or https:// URL, not #{url.to_s.inspect}"
      end

      @url = url.to_s
      @base_path = @uri.path.to_s.sub(%r{/+\z}, "")
      @key = key
      @retry_window = Float(retry_window)
      @open_timeout = open_timeout
      @read_timeout = read_timeout
      @write_timeout = write_timeout
      @logger = logger
      @retry_base = retry_base
      @retry_max_delay = retry_max_delay
      @max_idle = max_idle
      @keep_alive_timeout = keep_alive_timeout
      @mutex = Mutex.new
      @idle = []
      @pid = Process.pid
      @closed = false
      @stats = { requests: 0, retries: 0, published: 0, failed: 0 }
    end

    # Counters since start: requests (HTTP requests sent, attempts included),
    # retries, published (messages acknowledged), failed (publishes raised).
    def stats
      @mutex.synchronize { @stats.dup }
    end

    # Publishes one message. `payload` is its JSON text, sent byte for byte
    # as the body. Returns seqcast's answer: {"channel","seq","epoch","ts"}.
    def publish(channel, payload, idempotency_key: nil)
      channel = Seqcast.validate_channel!(channel)
      payload = check_payload(payload)
      idempotency_key ||= SecureRandom.uuid
      path = "#{@base_path}/v1/channels/#{Seqcast.encode_channel(channel)}/messages"
      answer = post(path, payload, { "Idempotency-Key" => idempotency_key }, "broadcast to #{channel}")
      count(:published, 1)
      answer
    end

    # Publishes several messages in one POST /v1/publish, atomically (all or
    # none), in order. `items`: [channel, payload] or
    # [channel, payload, idempotency_key] arrays; an item without a key gets
    # one. Returns the answers, one per item: [{"channel","seq","epoch","ts"}].
    def publish_batch(items)
      return [] if items.empty?

      body = String.new(%({"messages":[), encoding: Encoding::BINARY)
      items.each_with_index do |(channel, payload, key), i|
        channel = Seqcast.validate_channel!(channel)
        payload = check_payload(payload)
        body << "," if i.positive?
        body << %({"channel":) << JSON.generate(channel).b
        body << %(,"idempotency_key":) << JSON.generate((key || SecureRandom.uuid).to_s).b
        body << %(,"data":) << payload.b << "}"
      end
      body << "]}"
      answer = post("#{@base_path}/v1/publish", body, {}, "batch of #{items.size} broadcasts")
      count(:published, items.size)
      answer.fetch("results")
    end

    # Closes the idle connections. Publishing afterwards still works (with a
    # connection per call).
    def shutdown
      idle = @mutex.synchronize do
        @closed = true
        list = @idle
        @idle = []
        list
      end
      idle.each { |http| close_quietly(http) }
      nil
    end

    private

    def check_payload(payload)
      return payload if payload.is_a?(String)

      raise ArgumentError, "a seqcast payload is a String of JSON text (what Action Cable's coder " \
                           "produced), not #{payload.class}"
    end

    def now
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    def count(name, n)
      @mutex.synchronize { @stats[name] += n }
    end

    def post(path, body, headers, what)
      started = now
      attempts = 0
      loop do
        attempts += 1
        outcome = attempt(path, body, headers, what, attempts)
        return outcome if outcome.is_a?(Hash) # the answer

        status, code, detail = outcome
        remaining = started + @retry_window - now
        if remaining <= 0
          count(:failed, 1)
          last = status ? "#{status} #{code}: #{detail}" : detail
          raise PublishError.new(
            "seqcast did not take the #{what} within #{format("%g", @retry_window)} s of retries " \
            "(#{attempts} attempt#{"s" if attempts > 1}; last: #{last})",
            status: status, code: code, attempts: attempts,
          )
        end
        delay = [backoff(attempts), remaining].min
        @logger&.warn do
          "[seqcast] #{what} failed (#{status ? "#{status} #{code}" : detail}); retrying in " \
            "#{format("%.2f", delay)} s (attempt #{attempts}, #{format("%.1f", remaining)} s of the retry window left)"
        end
        count(:retries, 1)
        sleep delay
      end
    end

    # One request. Returns the parsed answer (a Hash) on 200/201, or
    # [status, code, detail] for a failure worth retrying; raises for the rest.
    def attempt(path, body, headers, what, attempts)
      response = request(path, body, headers)
      status = response.code.to_i
      if status == 200 || status == 201
        begin
          parsed = JSON.parse(response.body.to_s)
          return parsed if parsed.is_a?(Hash)
        rescue JSON::ParserError
          nil
        end
        count(:failed, 1)
        raise PublishError.new("seqcast answered #{status} with a body that is not a JSON object: " \
                               "#{response.body.to_s[0, 200].inspect}", status: status, code: "bad_response",
                                                                         attempts: attempts)
      end
      code, message = error_of(response)
      return [status, code, message] if RETRY_STATUSES.include?(status)

      count(:failed, 1)
      raise PublishError.new("seqcast refused the #{what}: #{status} #{code}: #{message}",
                             status: status, code: code, attempts: attempts)
    rescue OpenSSL::SSL::SSLError => e
      # A handshake cut by a restarting node is retried; a certificate that
      # does not verify will not get better.
      return [nil, "connection_failed", "#{e.class}: #{e.message}"] unless e.message.include?("certificate")

      count(:failed, 1)
      raise PublishError.new("seqcast's TLS certificate was not accepted: #{e.message}",
                             code: "tls_failed", attempts: attempts)
    rescue *NETWORK_ERRORS => e
      [nil, "connection_failed", "#{e.class}: #{e.message}"]
    end

    def error_of(response)
      parsed = JSON.parse(response.body.to_s)
      error = parsed.is_a?(Hash) ? parsed["error"] : nil
      if error.is_a?(Hash) && error["code"]
        return [error["code"].to_s, error["message"].to_s]
      end

      ["http_#{response.code}", response.body.to_s[0, 200]]
    rescue JSON::ParserError
      ["http_#{response.code}", response.body.to_s[0, 200]]
    end

    def backoff(attempt)
      full = [@retry_base * (2**(attempt - 1)), @retry_max_delay].min
      (full / 2) + (rand * full / 2)
    end

    def request(path, body, headers)
      http = checkout
      done = false
      begin
        req = Net::HTTP::Post.new(path)
        req["Content-Type"] = CONTENT_TYPE
        req["Accept"] = CONTENT_TYPE
        req["User-Agent"] = "seqcast-rails/#{Seqcast::Rails::VERSION}"
        req["Authorization"] = "Bearer #{@key}" if @key
        headers.each { |name, value| req[name] = value }
        req["Expect"] = "100-continue" if body.bytesize > EXPECT_CONTINUE_BYTES
        req.body = body
        count(:requests, 1)
        response = http.request(req)
        done = true
        response
      ensure
        done ? checkin(http) : close_quietly(http)
      end
    end

    def checkout
      http = @mutex.synchronize do
        if @pid != Process.pid
          # Forked: the parent's sockets are not ours to use, nor to close
          # (closing a TLS one would send close_notify on the parent's behalf).
          @idle = []
          @pid = Process.pid
        end
        @idle.pop
      end
      http || connect
    end

    def checkin(http)
      keep = @mutex.synchronize do
        if !@closed && @pid == Process.pid && @idle.size < @max_idle
          @idle.push(http)
          true
        end
      end
      close_quietly(http) unless keep
    end

    def connect
      http = Net::HTTP.new(@uri.host, @uri.port)
      http.use_ssl = @uri.scheme == "https"
      http.open_timeout = @open_timeout
      http.read_timeout = @read_timeout
      http.write_timeout = @write_timeout if http.respond_to?(:write_timeout=)
      http.keep_alive_timeout = @keep_alive_timeout
      http.continue_timeout = 2 # then the body goes anyway (a proxy that ignores Expect)
      http.max_retries = 0 if http.respond_to?(:max_retries=) # retries are ours, with the same key
      http.start
      http
    end

    def close_quietly(http)
      http.finish if http.started?
    rescue StandardError
      nil
    end
  end
end
