// Settings: defaults, environment, flags winning over environment, and clear errors.
#include "config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace seqcast {
namespace {

command_line parse(std::vector<const char*> args) {
  args.insert(args.begin(), "seqcast");
  return parse_command_line(static_cast<int>(args.size()), args.data());
}

TEST(Config, Defaults) {
  auto cl = parse({"serve"});
  EXPECT_EQ(cl.command, "serve");
  EXPECT_EQ(cl.settings.listen, "127.0.0.1:8080");
  EXPECT_EQ(cl.settings.heartbeat_seconds, 25);
  EXPECT_EQ(cl.settings.max_payload_bytes, 1048576);
  EXPECT_EQ(cl.settings.retention_messages, 100000);
  EXPECT_EQ(cl.settings.retention_seconds, 604800);
}

TEST(Config, FlagWinsOverEnvironment) {
  setenv("SEQCAST_HEARTBEAT_SECONDS", "7", 1);
  setenv("SEQCAST_PUBLISH_KEYS", "a, b", 1);
  auto env_only = parse({"serve"});
  EXPECT_EQ(env_only.settings.heartbeat_seconds, 7);
  EXPECT_EQ(env_only.settings.publish_keys, (std::vector<std::string>{"a", "b"}));
  auto flag = parse({"serve", "--heartbeat-seconds", "3"});
  EXPECT_EQ(flag.settings.heartbeat_seconds, 3);
  auto eq = parse({"serve", "--heartbeat-seconds=4"});
  EXPECT_EQ(eq.settings.heartbeat_seconds, 4);
  unsetenv("SEQCAST_HEARTBEAT_SECONDS");
  unsetenv("SEQCAST_PUBLISH_KEYS");
}

TEST(Config, CommandOptions) {
  auto cl = parse({"replay", "--channel", "c", "--from", "5", "--follow"});
  EXPECT_EQ(cl.command, "replay");
  EXPECT_EQ(cl.args.at("channel"), "c");
  EXPECT_EQ(cl.args.at("from"), "5");
  EXPECT_EQ(cl.args.at("follow"), "true");
  EXPECT_FALSE(parse({"serve", "--no-migrate"}).settings.migrate_on_start);
}

TEST(Config, ClearErrors) {
  EXPECT_THROW(parse({"--heartbeat-seconds", "x"}), std::invalid_argument);
  EXPECT_THROW(parse({"--heartbeat-seconds", "0"}), std::invalid_argument);
  EXPECT_THROW(parse({"--bogus"}), std::invalid_argument);
  EXPECT_THROW(parse({"--listen"}), std::invalid_argument);
  config c;
  EXPECT_THROW(validate(c, "serve"), std::invalid_argument);  // no database_url
  c.database_url = "postgresql://x";
  EXPECT_NO_THROW(validate(c, "serve"));
  EXPECT_THROW(validate(c, "dance"), std::invalid_argument);
  c.streams_secret = "hex:abc";
  EXPECT_THROW(validate(c, "serve"), std::invalid_argument);
  c.streams_secret = "hex:abcd";
  EXPECT_NO_THROW(validate(c, "serve"));
  c.log_level = "loud";
  EXPECT_THROW(validate(c, "serve"), std::invalid_argument);
}

TEST(Config, HelpListsEverySettingWithDefaults) {
  const std::string help = help_text();
  for (std::string_view flag :
       {"--listen", "--database-url", "--cache-dir", "--publish-keys", "--admin-key",
        "--jwt-secret", "--allowed-origins", "--retention-messages", "--retention-seconds",
        "--retention-check-seconds", "--heartbeat-seconds", "--drain-delay-seconds",
        "--drain-window-seconds", "--max-payload-bytes", "SEQCAST_DATABASE_URL"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace seqcast
