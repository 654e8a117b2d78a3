# frozen_string_literal: true

require_relative "lib/seqcast/version"

Gem::Specification.new do |spec|
  spec.name = "seqcast-rails"
  spec.version = Seqcast::Rails::VERSION
  spec.summary = "Action Cable subscription adapter for seqcast (adapter: seqcast)"
  spec.description = <<~TEXT
    Publishes Action Cable and Turbo Streams broadcasts to seqcast, a reliable-delivery
    broadcast service: over its HTTP API (retried, idempotent, batched) or inside the
    app's own database transaction (outbox mode). Also signs stream names as turbo-rails does.
    No dependencies beyond Ruby's standard library; Action Cable and Active Record are used
    where the app has them.
  TEXT
  spec.authors = ["seqcast"]
  spec.required_ruby_version = ">= 2.7"
  spec.files = Dir[File.join(__dir__, "lib/**/*.rb")].map { |f| f.delete_prefix("#{__dir__}/") } + ["README.md"]
  spec.require_paths = ["lib"]
  spec.metadata["rubygems_mfa_required"] = "true"
end
