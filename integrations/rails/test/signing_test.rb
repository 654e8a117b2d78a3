# frozen_string_literal: true

require_relative "test_helper"
require "active_support"
require "active_support/message_verifier"
require "openssl"

class SigningTest < Minitest::Test
  CONTRACT_EXAMPLE = "InJvb206MSI=--bff11d45b76e9b980cb31b0eda13d83a55e9f5689a5b7b9fd8fc7936c27123e9"
  # turbo-rails' default key for secret_key_base "secret" on Rails 6.1: PBKDF2-HMAC-SHA1, 1000 rounds, 64 bytes.
  BINARY_KEY = OpenSSL::PKCS5.pbkdf2_hmac("secret", "turbo/signed_stream_verifier_key", 1000, 64, "SHA1")
  NAMES = [
    "room:1",
    "Z2lkOi8vbXlhcHAvUm9vbS8x:messages", # a gid param and a suffix, as broadcasts_to makes
    "Z2lkOi8vYXBwL0FjY291bnQ6Ok1lbWJlcnNoaXAvMGY4ZmFkNWItZDlj:Z2lkOi8vYXBwL1Jvb20vNDI",
    "a" * 1024,
    "café/ü",            # not a seqcast channel, but signed like any other name
    "quote\"back\\slash\u0001",
    "",
  ].freeze

  def verifier(key)
    ActiveSupport::MessageVerifier.new(key, digest: "SHA256", serializer: JSON)
  end

  def test_contract_worked_example
    assert_equal CONTRACT_EXAMPLE, Seqcast.signed_stream_name("room:1", key: "secret")
  end

  def test_matches_message_verifier_with_a_text_key
    NAMES.each do |name|
      assert_equal verifier("secret").generate(name), Seqcast.signed_stream_name(name, key: "secret"), name
    end
  end

  def test_matches_message_verifier_with_the_binary_default_key
    assert_equal 64, BINARY_KEY.bytesize
    assert_equal "823ead24c9c15d2e", BINARY_KEY.unpack1("H*")[0, 16] # RAILS.md §3.2
    NAMES.each do |name|
      assert_equal verifier(BINARY_KEY).generate(name), Seqcast.signed_stream_name(name, key: BINARY_KEY), name
    end
    assert_equal "InJvb206MSI=--b956ba5a8b0168008ead60e89341d0dc90efd5e0443c50b42532908f844ed793",
                 Seqcast.signed_stream_name("room:1", key: BINARY_KEY)
  end

  def test_length_formula
    name = "a" * 1024
    assert_equal (4 * ((name.length + 2) / 3.0).ceil) + 66, Seqcast.signed_stream_name(name, key: "k").length
  end

  def test_message_verifier_verifies_ours_and_we_verify_its
    NAMES.each do |name|
      ours = Seqcast.signed_stream_name(name, key: "secret")
      assert_equal name, verifier("secret").verified(ours)
      assert_equal name, Seqcast.verified_stream_name(verifier("secret").generate(name), key: "secret")
    end
  end

  def test_verified_stream_name_refuses_forgeries
    signed = Seqcast.signed_stream_name("room:1", key: "secret")
    assert_nil Seqcast.verified_stream_name(signed, key: "other")
    assert_nil Seqcast.verified_stream_name(signed.sub("InJvb206MSI=", "InJvb206MiI="), key: "secret")
    assert_nil Seqcast.verified_stream_name("garbage", key: "secret")
    assert_nil Seqcast.verified_stream_name(nil, key: "secret")
    not_a_string = Seqcast.signed_stream_name("x", key: "k").then do
      data = Base64.strict_encode64(JSON.dump([1, 2]))
      "#{data}--#{OpenSSL::HMAC.hexdigest("SHA256", "k", data)}"
    end
    assert_nil Seqcast.verified_stream_name(not_a_string, key: "k")
  end

  Record = Struct.new(:gid) do
    def to_gid_param
      gid
    end
  end

  def test_streamables_like_turbo_stream_from
    room = Record.new("Z2lkOi8vbXlhcHAvUm9vbS8x")
    assert_equal "Z2lkOi8vbXlhcHAvUm9vbS8x:messages", Seqcast.stream_name_from([room, :messages])
    assert_equal "Z2lkOi8vbXlhcHAvUm9vbS8x", Seqcast.stream_name_from(room)
    assert_equal "a:1:b:c", Seqcast.stream_name_from(["a", 1, [:b, "c"]])
    assert_equal ":x", Seqcast.stream_name_from([nil, "x"]) # turbo_stream_from keeps blank parts
    assert_equal Seqcast.signed_stream_name("Z2lkOi8vbXlhcHAvUm9vbS8x:messages", key: "k"),
                 Seqcast.signed_stream_name([room, "messages"], key: "k")
  end

  def test_key_is_required_without_turbo
    error = assert_raises(ArgumentError) { Seqcast.signed_stream_name("room:1") }
    assert_match(/key:/, error.message)
  end
end
