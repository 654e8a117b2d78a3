# frozen_string_literal: true

require_relative "test_helper"
require "active_support"
require "active_support/core_ext/hash/indifferent_access"
require "rbconfig"

class ConfigTest < Minitest::Test
  def config(settings, env = {})
    Seqcast::Config.new(settings, env: env)
  end

  def test_cable_yml_keys_as_strings_symbols_or_indifferent
    [{ "url" => "http://a:1", "key" => "k" }, { url: "http://a:1", key: "k" },
     { "url" => "http://a:1", "key" => "k" }.with_indifferent_access].each do |settings|
      c = config(settings)
      assert_equal "http://a:1", c.url
      assert_equal "k", c.key
      assert_equal "http", c.mode
      assert_equal "seqcast", c.schema
      assert_equal 30.0, c.retry_window
    end
  end

  def test_env_fallbacks
    c = config({ adapter: "seqcast" }, "SEQCAST_URL" => "http://env:8080", "SEQCAST_PUBLISH_KEY" => "envkey")
    assert_equal "http://env:8080", c.url
    assert_equal "envkey", c.key
    c = config({ url: "http://yml:1", key: "ymlkey" }, "SEQCAST_URL" => "http://env:8080", "SEQCAST_PUBLISH_KEY" => "e")
    assert_equal "http://yml:1", c.url
    assert_equal "ymlkey", c.key
    # an empty value in cable.yml (an unset ERB variable) falls back too
    c = config({ url: "", key: nil }, "SEQCAST_URL" => "http://env:8080", "SEQCAST_PUBLISH_KEY" => "envkey")
    assert_equal "http://env:8080", c.url
    assert_equal "envkey", c.key
    assert_nil config({ url: "http://a:1" }).key # a node without publish keys
  end

  def test_http_mode_needs_a_url
    error = assert_raises(Seqcast::ConfigurationError) { config({}) }
    assert_match(/SEQCAST_URL/, error.message)
    assert_raises(Seqcast::ConfigurationError) { config({ url: "localhost:8080" }) }
    assert_raises(Seqcast::ConfigurationError) { config({ url: "ftp://x" }) }
  end

  def test_outbox_mode
    c = config({ mode: "outbox", schema: "seqcast_app" })
    assert_equal "outbox", c.mode
    assert_equal "seqcast_app", c.schema
    assert_nil c.url
    assert_raises(Seqcast::ConfigurationError) { config({ mode: "outbox", schema: "x; DROP TABLE y" }) }
  end

  def test_unknown_mode
    error = assert_raises(Seqcast::ConfigurationError) { config({ url: "http://a:1", mode: "redis" }) }
    assert_match(/http, outbox/, error.message)
  end

  def test_channel_prefix_is_refused_with_the_reason
    error = assert_raises(Seqcast::ConfigurationError) { config({ url: "http://a:1", channel_prefix: "app_production" }) }
    assert_match(/channel_prefix/, error.message)
    assert_match(/turbo_stream_from/, error.message)
    assert_equal "http://a:1", config({ url: "http://a:1", channel_prefix: "" }).url
    assert_equal "http://a:1", config({ url: "http://a:1", channel_prefix: nil }).url
  end

  def test_numbers
    c = config({ url: "http://a:1", retry_window: "2.5", open_timeout: 1, read_timeout: "3" })
    assert_equal 2.5, c.retry_window
    assert_equal 1.0, c.open_timeout
    assert_equal 3.0, c.read_timeout
    assert_equal 0.0, config({ url: "http://a:1", retry_window: 0 }).retry_window
    assert_raises(Seqcast::ConfigurationError) { config({ url: "http://a:1", retry_window: "soon" }) }
    assert_raises(Seqcast::ConfigurationError) { config({ url: "http://a:1", retry_window: -1 }) }
  end

  def test_the_gem_loads_with_the_standard_library_only
    lib = File.expand_path("../lib", __dir__)
    # The script in ASCII, escapes for the rest: `-e` is read in the locale's encoding,
    # and a fresh Debian has no UTF-8 locale (LANG unset).
    out = IO.popen([RbConfig.ruby, "--disable-gems", "-I", lib, "-e", <<~'RUBY'], err: %i[child out], &:read)
      require "seqcast/rails"
      abort "ActiveSupport loaded" if defined?(ActiveSupport)
      abort "ActiveRecord loaded" if defined?(ActiveRecord)
      print Seqcast.signed_stream_name("caf\u00e9/\u00fc", key: "secret")
    RUBY
    assert $?.success?, out
    verifier = ActiveSupport::MessageVerifier.new("secret", digest: "SHA256", serializer: JSON)
    assert_equal verifier.generate("café/ü"), out
  end
end
