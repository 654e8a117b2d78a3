# frozen_string_literal: true

require "base64"
require "json"
require "openssl"
require_relative "errors"

module Seqcast
  # seqcast's channel alphabet: 1–1024 characters of A-Z a-z 0-9 _ - . : @ = /
  CHANNEL_RULE = "a seqcast channel name is 1-1024 characters of A-Z a-z 0-9 _ - . : @ = /"
  CHANNEL_PATTERN = %r{\A[A-Za-z0-9_\-.:@=/]{1,1024}\z}.freeze

  module_function

  # True when `name` (a String or Symbol) is a valid seqcast channel name.
  def valid_channel?(name)
    (name.is_a?(String) || name.is_a?(Symbol)) && CHANNEL_PATTERN.match?(name.to_s)
  end

  # Returns the name as a String, or raises InvalidChannelName (an
  # ArgumentError) naming the rule.
  def validate_channel!(name)
    return name.to_s if valid_channel?(name)

    shown = name.to_s
    shown = "#{shown[0, 80]}… (#{shown.length} characters)" if shown.length > 80
    raise InvalidChannelName, "invalid channel name #{shown.inspect}: #{CHANNEL_RULE}"
  end

  # The path segment of a channel name: everything but A-Z a-z 0-9 _ - .
  # percent-encoded (so "/" travels as %2F).
  def encode_channel(name)
    name.to_s.b.gsub(/[^A-Za-z0-9_\-.]/n) { |c| format("%%%02X", c.ord) }
  end

  # The stream name turbo-rails makes from streamables
  # (Turbo::Streams::StreamName#stream_name_from): an Array's parts joined
  # with ":", each a record's to_gid_param, or else its to_param (to_s
  # without Active Support). Nothing is dropped: nil gives an empty part, as
  # in turbo_stream_from.
  def stream_name_from(streamables)
    if streamables.is_a?(Array)
      streamables.map { |streamable| stream_name_from(streamable) }.join(":")
    elsif streamables.respond_to?(:to_gid_param)
      streamables.to_gid_param
    elsif streamables.respond_to?(:to_param)
      streamables.to_param.to_s
    else
      streamables.to_s
    end
  end

  # A stream name signed exactly as turbo-rails signs it
  # (ActiveSupport::MessageVerifier.new(key, digest: "SHA256",
  # serializer: JSON).generate(name), Rails 6.1 through 8.x):
  #
  #   strict_base64(JSON.dump(name)) + "--" + hex(HMAC-SHA256(key, base64 part))
  #
  # `name_or_streamables` is a String, or what turbo_stream_from takes (a
  # record, an Array of records and strings). `key` is the app's
  # Turbo.signed_stream_verifier_key as it is: text, or the 64-byte binary key
  # turbo-rails derives by default. seqcast verifies the result with its
  # streams_secret (the same key: text, or "hex:" + key.unpack1("H*")).
  # Without `key:`, Turbo.signed_stream_verifier_key when turbo-rails is loaded.
  def signed_stream_name(name_or_streamables, key: nil)
    key ||= default_streams_key
    name = name_or_streamables.is_a?(String) ? name_or_streamables : stream_name_from(name_or_streamables)
    data = Base64.strict_encode64(JSON.dump(name))
    "#{data}--#{OpenSSL::HMAC.hexdigest("SHA256", key.to_s.b, data)}"
  end

  # The stream name inside a signed name, or nil when the signature does not
  # verify with `key` or the signed value is not a JSON string.
  def verified_stream_name(signed, key: nil)
    key ||= default_streams_key
    return nil unless signed.is_a?(String)

    data, _, digest = signed.rpartition("--")
    return nil if data.empty? || digest.length != 64

    expected = OpenSSL::HMAC.hexdigest("SHA256", key.to_s.b, data)
    return nil unless secure_compare(expected, digest)

    value = JSON.parse(Base64.strict_decode64(data), quirks_mode: true)
    value.is_a?(String) ? value : nil
  rescue ArgumentError, JSON::ParserError
    nil
  end

  def default_streams_key
    if defined?(::Turbo) && ::Turbo.respond_to?(:signed_stream_verifier_key) && ::Turbo.signed_stream_verifier_key
      return ::Turbo.signed_stream_verifier_key
    end

    raise ArgumentError, "signed_stream_name needs key: (the app's Turbo.signed_stream_verifier_key, " \
                         "the key seqcast has as streams_secret)"
  end

  def secure_compare(a, b)
    return false unless a.bytesize == b.bytesize

    OpenSSL.fixed_length_secure_compare(a, b)
  end
end
