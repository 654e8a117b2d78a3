# frozen_string_literal: true

# Runs every unit test: ruby -I lib -I test test/run.rb (from integrations/rails)
Dir[File.join(__dir__, "*_test.rb")].sort.each { |file| require file }
