# Action Cable on its own PostgreSQL adapter, served by puma: the baseline
# bench/rails.sh compares seqcast's Rails adapter with. One channel class,
# BenchChannel, streams the stream named by its identifier's stream_name.
require "logger"
require "active_record"
require "action_cable"

ActiveRecord::Base.establish_connection(ENV.fetch("DATABASE_URL"))
ActiveRecord::Base.logger = nil

class BenchChannel < ActionCable::Channel::Base
  def subscribed
    stream_from params[:stream_name]
  end
end

ActionCable.server.config.cable = { "adapter" => "postgresql" }
ActionCable.server.config.connection_class = -> { ActionCable::Connection::Base }
ActionCable.server.config.logger = Logger.new(nil)
ActionCable.server.config.disable_request_forgery_protection = true
ActionCable.server.config.worker_pool_size = Integer(ENV.fetch("WORKERS", "4"))

run ActionCable.server
