# frozen_string_literal: true

require_relative "names"

module Seqcast
  # The broadcasts of one Seqcast.batch block, sent as one POST /v1/publish
  # when the block ends.
  class Batch
    attr_reader :items

    def initialize
      @items = [] # [publisher, channel, payload]
    end

    def add(publisher, channel, payload)
      channel = Seqcast.validate_channel!(channel)
      unless payload.is_a?(String)
        raise ArgumentError, "a seqcast payload is a String of JSON text, not #{payload.class}"
      end

      @items << [publisher, channel, payload]
      nil
    end

    def empty?
      @items.empty?
    end

    # One request per publisher (one, unless the app has several seqcast
    # adapters), in the order of the first broadcast to each. Returns every
    # answer, in broadcast order.
    def flush
      groups = @items.group_by(&:first)
      groups.flat_map do |publisher, items|
        publisher.publish_batch(items.map { |_, channel, payload| [channel, payload] })
      end
    end
  end

  BATCH_KEY = :seqcast_rails_batch
  private_constant :BATCH_KEY

  class << self
    # Collects every http-mode broadcast this thread makes inside the block
    # (ActionCable.server.broadcast, broadcast_to, Turbo's broadcast_*_to) and
    # sends them, when the block ends, as ONE POST /v1/publish: atomic (all
    # or none) and in order, each with its own idempotency key, retried as a
    # single broadcast is. Returns the block's value.
    #
    # - A broadcast inside the block returns nil (nothing is sent yet).
    # - The block raises: nothing is sent, the exception goes on.
    # - The send fails: Seqcast::PublishError from Seqcast.batch (nothing was
    #   published: a batch is all or none).
    # - Nested blocks join the outermost one.
    # - Outbox mode: broadcasts go into the app's transaction at once, which
    #   is already all or none; the block changes nothing for them.
    def batch
      return yield if current_batch

      batch = Batch.new
      Thread.current[BATCH_KEY] = batch
      begin
        value = yield
      ensure
        Thread.current[BATCH_KEY] = nil
      end
      batch.flush unless batch.empty?
      value
    end

    # The Batch this thread is collecting into, or nil.
    def current_batch
      Thread.current[BATCH_KEY]
    end
  end
end
