# frozen_string_literal: true

require_relative "test_helper"

class NamesTest < Minitest::Test
  def test_valid_names
    ["a", "room:1", "A-Z_a.z:0@9=/", "x" * 1024, "Z2lkOi8vbXlhcHAvUm9vbS8x:messages", :symbol_name].each do |name|
      assert Seqcast.valid_channel?(name), name.inspect
      assert_equal name.to_s, Seqcast.validate_channel!(name)
    end
  end

  def test_invalid_names_raise_argument_error_naming_the_rule
    ["", "x" * 1025, "has space", "hash#tag", "café", "tab\t", "new\nline", "a\u0000b", "100%", nil, 42].each do |name|
      refute Seqcast.valid_channel?(name), name.inspect
      error = assert_raises(ArgumentError, name.inspect) { Seqcast.validate_channel!(name) }
      assert_kind_of Seqcast::InvalidChannelName, error
      assert_includes error.message, "1-1024 characters of A-Z a-z 0-9 _ - . : @ = /"
    end
  end

  def test_long_names_are_shortened_in_the_message
    error = assert_raises(ArgumentError) { Seqcast.validate_channel!("y" * 5000) }
    assert_operator error.message.length, :<, 300
    assert_includes error.message, "5000 characters"
  end

  def test_path_encoding
    assert_equal "room%3A1", Seqcast.encode_channel("room:1")
    assert_equal "a%2Fb%40c%3Dd_e-f.g", Seqcast.encode_channel("a/b@c=d_e-f.g")
  end
end
