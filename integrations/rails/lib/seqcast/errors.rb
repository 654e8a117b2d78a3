# frozen_string_literal: true

module Seqcast
  # Every error this gem raises on purpose, except ArgumentError for a bad
  # channel name (InvalidChannelName, which is an ArgumentError).
  class Error < StandardError; end

  # A setting that cannot work: a missing url, an unknown mode, channel_prefix,
  # a schema without seqcast.publish.
  class ConfigurationError < Error; end

  # A channel name outside seqcast's alphabet. Raised before any request.
  class InvalidChannelName < ArgumentError; end

  # seqcast did not take a broadcast. Never a silent drop: this reaches the
  # caller of ActionCable.server.broadcast.
  #
  #   status  the HTTP status seqcast answered (413, 401, 503, …), or the one
  #           the HTTP API gives for the same error in outbox mode (400 for
  #           invalid_channel / invalid_json, 413 for payload_too_large);
  #           nil when no answer came at all (connection refused or dropped)
  #   code    seqcast's error code: "payload_too_large", "invalid_channel",
  #           "invalid_json", "unauthorized", "forbidden", "unavailable", …;
  #           "connection_failed" when no answer came
  #   attempts  requests made (1 unless it was retried)
  class PublishError < Error
    attr_reader :status, :code, :attempts

    def initialize(message = nil, status: nil, code: nil, attempts: 1)
      @status = status
      @code = code
      @attempts = attempts
      super(message || default_message)
    end

    private

    def default_message
      status ? "seqcast answered #{status} #{code}" : "seqcast publish failed (#{code})"
    end
  end
end
