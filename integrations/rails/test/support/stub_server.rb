# frozen_string_literal: true

require "socket"
require "json"

# A tiny HTTP/1.1 server on 127.0.0.1 for the unit tests (no WEBrick): it
# keeps connections alive, records every request, and answers from a script
# of actions, one per request, the last one repeated:
#
#   [:respond, status, body_hash_or_string]
#   [:drop]          read the request, then close without answering
#   [:close_after, status, body]   answer, with Connection: close, then close
#   [:refuse_body, status, body]   answer at once, without reading the body
#                    (as seqcast does to a request whose Content-Length is over
#                    its limit), then close
#
# A request with "Expect: 100-continue" is answered "100 Continue" before its
# body is read (except by :refuse_body).
#
# `requests`: [{method:, path:, headers: {lowercase => value}, body:, connection:}]
# `connections`: TCP connections accepted so far.
class StubServer
  Request = Struct.new(:method, :path, :headers, :body, :connection, keyword_init: true)

  attr_reader :port, :requests, :connections

  def initialize(script = [[:respond, 201, { "channel" => "c", "seq" => 1, "epoch" => "e", "ts" => "t" }]])
    @script = script.dup
    @requests = []
    @connections = 0
    @mutex = Mutex.new
    @server = TCPServer.new("127.0.0.1", 0)
    @port = @server.addr[1]
    @threads = []
    @acceptor = Thread.new { accept_loop }
  end

  def url
    "http://127.0.0.1:#{@port}"
  end

  # Replaces the remaining script.
  def script=(actions)
    @mutex.synchronize { @script = actions.dup }
  end

  def close
    @server.close rescue nil
    @acceptor.kill
    @threads.each(&:kill)
  end

  # A port nothing listens on.
  def self.closed_port
    server = TCPServer.new("127.0.0.1", 0)
    port = server.addr[1]
    server.close
    port
  end

  private

  def accept_loop
    loop do
      socket = @server.accept
      id = @mutex.synchronize { @connections += 1 }
      @threads << Thread.new { serve(socket, id) }
    end
  rescue IOError, Errno::EBADF
    nil
  end

  def serve(socket, id)
    loop do
      line = socket.gets("\r\n")
      break if line.nil?

      method, path, = line.split(" ")
      headers = {}
      while (header = socket.gets("\r\n")) && header != "\r\n"
        name, value = header.split(":", 2)
        headers[name.strip.downcase] = value.strip
      end
      request = Request.new(method: method, path: path, headers: headers, body: nil, connection: id)
      action = nil
      @mutex.synchronize do
        @requests << request
        action = @script.length > 1 ? @script.shift : @script.first
      end
      action = action.call(request) if action.respond_to?(:call)
      if action[0] == :refuse_body
        text = JSON.generate(action[2])
        socket.write("HTTP/1.1 #{action[1]} X\r\nContent-Type: application/json\r\n" \
                     "Content-Length: #{text.bytesize}\r\nConnection: close\r\n\r\n#{text}")
        break
      end
      socket.write("HTTP/1.1 100 Continue\r\n\r\n") if headers["expect"].to_s.downcase == "100-continue"
      request.body = socket.read(headers["content-length"].to_i).to_s
      case action[0]
      when :drop
        break
      when :respond, :close_after
        text = action[2].is_a?(String) ? action[2] : JSON.generate(action[2])
        close = action[0] == :close_after
        socket.write("HTTP/1.1 #{action[1]} X\r\nContent-Type: application/json\r\n" \
                     "Content-Length: #{text.bytesize}\r\n#{close ? "Connection: close\r\n" : ""}\r\n#{text}")
        break if close
      end
    end
  rescue IOError, SystemCallError
    nil
  ensure
    socket.close rescue nil
  end
end
