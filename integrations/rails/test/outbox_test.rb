# frozen_string_literal: true

require_relative "test_helper"
require "pg"

# Error mapping of outbox mode, without a database: the PostgreSQL errors
# seqcast.publish raises become the errors http mode raises.
class OutboxTest < Minitest::Test
  FakeResult = Struct.new(:fields) do
    def error_field(field)
      fields[field]
    end
  end

  def pg_error(klass, primary, sqlstate)
    error = klass.new("ERROR:  #{primary}\n")
    result = FakeResult.new({ PG::PG_DIAG_MESSAGE_PRIMARY => primary, PG::PG_DIAG_SQLSTATE => sqlstate })
    error.define_singleton_method(:result) { result }
    error
  end

  def translate(error)
    Seqcast::OutboxPublisher.new.send(:translate, error, "room:1")
  end

  def test_error_codes_map_like_http_mode
    {
      "payload_too_large: payload exceeds 1048576 bytes" => [413, "payload_too_large"],
      "invalid_json: unexpected end of input" => [400, "invalid_json"],
      "invalid_channel: channel must be 1-1024 of A-Z a-z 0-9 _ - . : @ = /" => [400, "invalid_channel"],
      "invalid_idempotency_key: too long" => [400, "invalid_idempotency_key"],
    }.each do |primary, (status, code)|
      mapped = translate(pg_error(PG::RaiseException, primary, "P0001"))
      assert_kind_of Seqcast::PublishError, mapped
      assert_equal status, mapped.status
      assert_equal code, mapped.code
      assert_includes mapped.message, primary
    end
  end

  def test_active_record_wrapping_is_seen_through
    require "active_record"
    pg = pg_error(PG::RaiseException, "payload_too_large: too big", "P0001")
    wrapped = begin
      begin
        raise pg
      rescue PG::Error
        raise ActiveRecord::StatementInvalid, "PG::RaiseException: ERROR:  payload_too_large: too big"
      end
    rescue ActiveRecord::StatementInvalid => e
      e
    end
    assert_equal "payload_too_large", translate(wrapped).code
  end

  def test_without_a_result_the_message_is_read
    mapped = translate(PG::RaiseException.new("ERROR:  invalid_json: bad\n"))
    assert_equal "invalid_json", mapped.code
  end

  def test_invalid_utf8_is_invalid_json
    mapped = translate(pg_error(PG::CharacterNotInRepertoire, 'invalid byte sequence for encoding "UTF8": 0xff', "22021"))
    assert_equal "invalid_json", mapped.code
  end

  def test_a_missing_function_or_schema_says_what_to_check
    [["function seqcast.publish(text, text, text) does not exist", "42883", PG::UndefinedFunction],
     ['schema "seqcast" does not exist', "3F000", PG::InvalidSchemaName]].each do |primary, sqlstate, klass|
      mapped = translate(pg_error(klass, primary, sqlstate))
      assert_kind_of Seqcast::ConfigurationError, mapped
      assert_includes mapped.message, primary
      assert_includes mapped.message, "database_schema"
    end
  end

  def test_other_errors_go_through_unchanged
    error = pg_error(PG::ConnectionBad, "server closed the connection unexpectedly", "08006")
    assert_same error, translate(error)
    other = RuntimeError.new("x")
    assert_same other, translate(other)
  end

  def test_schema_must_be_an_identifier
    assert_raises(Seqcast::ConfigurationError) { Seqcast::OutboxPublisher.new(schema: "a.b") }
    assert_raises(Seqcast::ConfigurationError) { Seqcast::OutboxPublisher.new(schema: '"x"') }
    assert_equal "seqcast_2", Seqcast::OutboxPublisher.new(schema: "seqcast_2").schema
  end

  def test_bad_names_and_payloads_raise_before_any_sql
    outbox = Seqcast::OutboxPublisher.new(record_class: "NoSuchModelAnywhere")
    assert_raises(ArgumentError) { outbox.publish("bad name", "1") }
    assert_raises(ArgumentError) { outbox.publish("c", { a: 1 }) }
  end
end
