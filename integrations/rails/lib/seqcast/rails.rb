# frozen_string_literal: true

# seqcast-rails: Action Cable's subscription adapter for seqcast
# (config/cable.yml: adapter: seqcast), a batching helper and turbo-rails'
# stream-name signing. Depends on Ruby's standard library only; Action Cable
# and Active Record are used where the app already has them.
require_relative "version"
require_relative "errors"
require_relative "names"
require_relative "config"
require_relative "http_publisher"
require_relative "outbox_publisher"
require_relative "batch"
