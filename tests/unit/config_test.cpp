// Settings: defaults, environment, flags winning over environment, and clear errors.
#include "config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

#include "node_identity.hpp"

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

TEST(Config, NodeNameAndAdvertiseUrl) {
  const std::string help = help_text();
  for (std::string_view text : {"--node-name", "SEQCAST_NODE_NAME", "<host name>:<listen port>",
                                "--advertise-url", "SEQCAST_ADVERTISE_URL"}) {
    EXPECT_NE(help.find(text), std::string::npos) << text;
  }
  auto cl = parse({"serve", "--node-name", "blue-1", "--advertise-url", "http://10.0.0.5:8080"});
  EXPECT_EQ(cl.settings.node_name, "blue-1");
  EXPECT_EQ(cl.settings.advertise_url, "http://10.0.0.5:8080");
  config c;
  c.database_url = "postgresql://x";
  c.advertise_url = "10.0.0.5:8080";
  EXPECT_THROW(validate(c, "serve"), std::invalid_argument);
  c.advertise_url = "https://blue.internal";
  EXPECT_NO_THROW(validate(c, "serve"));
  c.node_name = "tab\there";
  EXPECT_THROW(validate(c, "serve"), std::invalid_argument);
  c.node_name = std::string(256, 'n');
  EXPECT_THROW(validate(c, "serve"), std::invalid_argument);
}

TEST(NodeIdentity, DefaultsComeFromTheHostNameAndTheBoundPort) {
  config c;
  c.listen = "127.0.0.1:0";
  auto id = make_node_identity(c, "ip-10-0-1-5", 8123, "0.1.0", 42);
  EXPECT_EQ(id.name, "ip-10-0-1-5:8123");
  EXPECT_EQ(id.address, "http://127.0.0.1:8123");
  EXPECT_EQ(id.version, "0.1.0");
  EXPECT_EQ(id.started_at_us, 42);
  c.listen = "0.0.0.0:8080";
  EXPECT_EQ(make_node_identity(c, "web-2", 8080, "v", 0).address, "http://web-2:8080");
  c.listen = "[::]:8080";
  EXPECT_EQ(make_node_identity(c, "web-2", 8080, "v", 0).address, "http://web-2:8080");
  c.listen = "[::1]:8080";
  EXPECT_EQ(make_node_identity(c, "web-2", 8080, "v", 0).address, "http://[::1]:8080");
  c.node_name = "blue";
  c.advertise_url = "https://blue.example.com";
  id = make_node_identity(c, "web-2", 8080, "v", 0);
  EXPECT_EQ(id.name, "blue");
  EXPECT_EQ(id.address, "https://blue.example.com");
  EXPECT_FALSE(host_name().empty());
}

}  // namespace
}  // namespace seqcast
