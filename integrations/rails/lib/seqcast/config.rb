# frozen_string_literal: true

require_relative "errors"

module Seqcast
  # The adapter's settings, from config/cable.yml (ActionCable.server.config.cable)
  # with ENV fallbacks:
  #
  #   url           seqcast's base URL, e.g. http://127.0.0.1:8080 (or ENV SEQCAST_URL); http mode
  #   key           a publish key, sent as Authorization: Bearer (or ENV SEQCAST_PUBLISH_KEY)
  #   mode          "http" (default) or "outbox"
  #   schema        outbox mode: seqcast's database_schema (default "seqcast")
  #   record_class  outbox mode: the Active Record class whose connection publishes
  #                 (default ActiveRecord::Base), for apps with several databases
  #   retry_window  http mode: seconds a broadcast keeps retrying a 502/503/504 or a
  #                 refused/dropped connection before it raises (default 30)
  #   open_timeout, read_timeout, write_timeout   http mode: seconds per request (5, 15, 15)
  #   channel_prefix  refused (see README: browsers subscribe by the bare stream name)
  class Config
    MODES = %w[http outbox].freeze
    DEFAULTS = {
      mode: "http",
      schema: "seqcast",
      retry_window: 30.0,
      open_timeout: 5.0,
      read_timeout: 15.0,
      write_timeout: 15.0,
    }.freeze

    attr_reader :url, :key, :mode, :schema, :record_class, :retry_window,
                :open_timeout, :read_timeout, :write_timeout

    # `settings`: a Hash with String or Symbol keys (cable.yml arrives as a
    # HashWithIndifferentAccess). `env`: where the fallbacks are read.
    def initialize(settings = {}, env: ENV)
      settings ||= {}
      get = ->(name) { setting(settings, name) }

      prefix = get.(:channel_prefix)
      unless blank?(prefix)
        raise ConfigurationError,
              "the seqcast adapter does not support channel_prefix (#{prefix.inspect} in config/cable.yml): " \
              "browsers subscribe at seqcast by the stream name itself (turbo_stream_from signs the bare name), " \
              "so prefixed broadcasts would reach nobody. Remove channel_prefix; to keep apps or environments " \
              "apart, give each its own seqcast database or database_schema."
      end

      @mode = (blank?(get.(:mode)) ? DEFAULTS[:mode] : get.(:mode)).to_s
      unless MODES.include?(@mode)
        raise ConfigurationError, "seqcast adapter: mode must be one of #{MODES.join(", ")}, not #{@mode.inspect}"
      end

      @url = present(get.(:url)) || present(env["SEQCAST_URL"])
      @key = present(get.(:key)) || present(env["SEQCAST_PUBLISH_KEY"])
      @schema = (present(get.(:schema)) || DEFAULTS[:schema]).to_s
      @record_class = present(get.(:record_class))
      @retry_window = seconds(get.(:retry_window), :retry_window)
      @open_timeout = seconds(get.(:open_timeout), :open_timeout)
      @read_timeout = seconds(get.(:read_timeout), :read_timeout)
      @write_timeout = seconds(get.(:write_timeout), :write_timeout)

      if @mode == "http"
        if @url.nil?
          raise ConfigurationError, "seqcast adapter: no url; set url: in config/cable.yml or SEQCAST_URL " \
                                    "(seqcast's base URL, e.g. http://127.0.0.1:8080)"
        end
        unless @url.to_s.match?(%r{\Ahttps?://[^/]}i)
          raise ConfigurationError, "seqcast adapter: url must be an http:// or https:// URL, not #{@url.inspect}"
        end
      end
      unless @schema.match?(/\A[A-Za-z_][A-Za-z0-9_$]{0,62}\z/)
        raise ConfigurationError, "seqcast adapter: schema must be a plain SQL identifier, not #{@schema.inspect}"
      end
    end

    private

    def setting(settings, name)
      return settings[name.to_s] if settings.respond_to?(:key?) && settings.key?(name.to_s)

      settings[name.to_sym] if settings.respond_to?(:key?) && settings.key?(name.to_sym)
    end

    def blank?(value)
      value.nil? || (value.respond_to?(:empty?) && value.empty?)
    end

    def present(value)
      blank?(value) ? nil : value.to_s
    end

    def seconds(value, name)
      return DEFAULTS[name] if blank?(value)

      f = Float(value)
      raise ArgumentError if f.negative? || !f.finite?

      f
    rescue ArgumentError, TypeError
      raise ConfigurationError, "seqcast adapter: #{name} must be a number of seconds >= 0, not #{value.inspect}"
    end
  end
end
