# frozen_string_literal: true

require "action_cable" unless defined?(ActionCable::SubscriptionAdapter::Base)
require_relative "../../seqcast/rails"

module ActionCable
  module SubscriptionAdapter
    # Action Cable's pub/sub adapter for seqcast, publish-only. With
    #
    #   # config/cable.yml
    #   production:
    #     adapter: seqcast
    #     url: <%= ENV["SEQCAST_URL"] %>          # http mode (default)
    #     key: <%= ENV["SEQCAST_PUBLISH_KEY"] %>
    #
    # every ActionCable.server.broadcast (and broadcast_to, Turbo's
    # broadcast_*_to) is published to seqcast, synchronously: it returns once
    # the message is committed, and raises Seqcast::PublishError when seqcast
    # refuses it or stays unreachable past the retry window. Browsers connect
    # to seqcast (/cable or /v1/ws), not to Rails. See integrations/rails/README.md.
    class Seqcast < Base
      SUBSCRIBE_MESSAGE =
        "the seqcast adapter only publishes: browsers connect to seqcast (its /cable, or /v1/ws), " \
        "not to this Rails server, so nothing here can subscribe. Point the front end at seqcast " \
        "(config.action_cable.url = \"wss://<seqcast>/cable\") and stop serving Action Cable from Rails " \
        "(config.action_cable.mount_path = nil); a client that still reaches Rails' /cable is never confirmed."

      attr_reader :settings, :publisher

      def initialize(server)
        super
        @settings = ::Seqcast::Config.new(server.config.cable)
        @publisher =
          if @settings.mode == "outbox"
            ::Seqcast::OutboxPublisher.new(schema: @settings.schema, record_class: @settings.record_class)
          else
            ::Seqcast::HttpPublisher.new(
              url: @settings.url, key: @settings.key, retry_window: @settings.retry_window,
              open_timeout: @settings.open_timeout, read_timeout: @settings.read_timeout,
              write_timeout: @settings.write_timeout, logger: logger
            )
          end
      end

      # `payload` is the String Action Cable's coder made (for Turbo, a JSON
      # string of HTML): it is the seqcast payload, byte for byte.
      # http mode: returns seqcast's answer {"channel","seq","epoch","ts"}, or
      # nil inside Seqcast.batch (sent when the block ends).
      # outbox mode: returns nil; delivered when the current transaction commits.
      def broadcast(channel, payload)
        channel = ::Seqcast.validate_channel!(channel)
        if @settings.mode == "http" && (batch = ::Seqcast.current_batch)
          return batch.add(@publisher, channel, payload)
        end

        @publisher.publish(channel, payload)
      end

      def subscribe(_channel, _message_callback, _success_callback = nil)
        raise NotImplementedError, SUBSCRIBE_MESSAGE
      end

      def unsubscribe(_channel, _message_callback)
        raise NotImplementedError, SUBSCRIBE_MESSAGE
      end

      # Closes the kept-alive HTTP connections (Action Cable calls this on
      # server.restart, e.g. at a code reload).
      def shutdown
        @publisher.shutdown if @publisher.respond_to?(:shutdown)
      end

      # Seqcast.batch { … }: every broadcast inside as one request.
      def batch(&block)
        ::Seqcast.batch(&block)
      end
    end
  end
end
