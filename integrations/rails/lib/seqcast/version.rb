# frozen_string_literal: true

module Seqcast
  module Rails
    VERSION = "0.1.0"
  end
end
