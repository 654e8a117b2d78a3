# frozen_string_literal: true

$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))
$LOAD_PATH.unshift(File.expand_path("support", __dir__))
require "minitest/autorun"
require "logger"
require "stringio"
require "seqcast/rails"
require "stub_server"

module SeqcastTestHelpers
  def ok_body(seq = 1, channel = "c")
    { "channel" => channel, "seq" => seq, "epoch" => "e1", "ts" => "2024-01-01T00:00:00Z" }
  end

  def error_body(code, message = code)
    { "error" => { "code" => code, "message" => message } }
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end
end
