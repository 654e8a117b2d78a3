# frozen_string_literal: true

require_relative "errors"
require_relative "names"

module Seqcast
  # Publishes with seqcast's transactional publish:
  #
  #   SELECT <schema>.publish(channel, payload, idempotency_key)
  #
  # on the application's own Active Record connection — the one the current
  # thread holds, so inside `transaction do … end` the message is delivered if
  # and only if that transaction commits (like the PostgreSQL adapter's
  # NOTIFY, without its 8000-byte limit). Outside a transaction it commits at
  # once. Needs the app's database to be seqcast's (or to hold its schema).
  # Active Record is required when the first message is published.
  class OutboxPublisher
    # The error codes seqcast.publish raises (the message starts with one) and
    # the HTTP status the HTTP API gives for each.
    ERROR_STATUS = {
      "invalid_channel" => 400,
      "invalid_json" => 400,
      "invalid_idempotency_key" => 400,
      "payload_too_large" => 413,
    }.freeze

    attr_reader :schema

    def initialize(schema: "seqcast", record_class: nil)
      unless schema.to_s.match?(/\A[A-Za-z_][A-Za-z0-9_$]{0,62}\z/)
        raise ConfigurationError, "seqcast outbox: schema must be a plain SQL identifier, not #{schema.inspect}"
      end

      @schema = schema.to_s
      @record_class = record_class
    end

    # Publishes one message inside the current transaction (if any). Returns
    # nil: the seq is assigned after the commit.
    def publish(channel, payload, idempotency_key: nil)
      channel = Seqcast.validate_channel!(channel)
      unless payload.is_a?(String)
        raise ArgumentError, "a seqcast payload is a String of JSON text (what Action Cable's coder " \
                             "produced), not #{payload.class}"
      end

      model.connection_pool.with_connection do |connection|
        sql = "SELECT #{connection.quote_table_name(@schema)}.publish($1, $2, $3)"
        binds = [bind("channel", channel), bind("payload", payload), bind("idempotency_key", idempotency_key)]
        connection.exec_query(sql, "Seqcast Publish", binds, prepare: false)
      end
      nil
    rescue StandardError => e
      raise translate(e, channel)
    end

    private

    def model
      require "active_record"
      return ::ActiveRecord::Base if @record_class.nil?

      @record_class.is_a?(String) ? Object.const_get(@record_class) : @record_class
    rescue LoadError => e
      raise ConfigurationError, "seqcast outbox mode needs Active Record (#{e.message})"
    end

    def bind(name, value)
      ::ActiveRecord::Relation::QueryAttribute.new(name, value, ::ActiveRecord::Type::Text.new)
    end

    # Maps a PostgreSQL error of seqcast.publish to the error the HTTP API
    # would have given; anything else goes through unchanged.
    def translate(error, channel)
      return error if error.is_a?(Seqcast::Error) || error.is_a?(ArgumentError)

      pg = error.cause if defined?(::ActiveRecord::StatementInvalid) && error.is_a?(::ActiveRecord::StatementInvalid)
      pg ||= error
      return error unless defined?(::PG::Error) && pg.is_a?(::PG::Error)

      primary = pg.result&.error_field(::PG::PG_DIAG_MESSAGE_PRIMARY) || pg.message.sub(/\A\s*ERROR:\s+/, "")
      sqlstate = pg.result&.error_field(::PG::PG_DIAG_SQLSTATE)
      code = primary[/\A(#{ERROR_STATUS.keys.join("|")})\b/o, 1]
      code ||= "invalid_json" if sqlstate == "22021" # invalid byte sequence for UTF8
      if code
        return PublishError.new("seqcast refused the broadcast to #{channel}: #{code}: #{primary}",
                                status: ERROR_STATUS[code], code: code)
      end
      if %w[42883 3F000].include?(sqlstate) # undefined_function, invalid_schema_name
        return ConfigurationError.new(
          "seqcast outbox: #{primary} — #{@schema}.publish(text, text, text) is not in this database: " \
          "the app must share seqcast's database, the seqcast server must be new enough to ship it " \
          "(seqcast migrate), and schema: must be its database_schema (#{@schema.inspect} now)",
        )
      end
      error
    end
  end
end
