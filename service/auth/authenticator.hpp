// Who may publish, administer, read and subscribe, and from which browser origins.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"

namespace seqcast::auth {

enum class verdict { allowed, unauthorized, forbidden };  // → 2xx, 401, 403

// What a reader (subscriber, log reader) may see.
struct reader {
  bool everything = false;            // open server, or the admin key
  std::vector<std::string> channels;  // names, or prefixes ending in '*'
  bool may_read(std::string_view channel) const;
};

// Thread-safe (immutable after construction).
//
// Publishing needs a publish key or the admin key once either is configured;
// DELETE and drain need the admin key. Reading and subscribing need a JWT
// signed with jwt_secret once it is configured (the admin key also works).
// With nothing configured, everything is open.
class authenticator {
 public:
  explicit authenticator(const config& cfg);

  // `authorization` is the Authorization header ("" when absent).
  verdict publish(std::string_view authorization) const;
  verdict admin(std::string_view authorization) const;

  // The reader behind a Bearer header or a ?token= value; nullopt → 401.
  std::optional<reader> read(std::string_view authorization,
                             std::optional<std::string_view> token) const;

  // Browsers' WebSocket/SSE upgrades: no Origin (non-browser) is fine; else it
  // must match allowed_origins (exact, or https://*.example.com) when set.
  bool origin_allowed(std::optional<std::string_view> origin) const;

  // The stream name behind a Rails-signed name (streams_secret); nullopt when
  // the signature does not hold or no streams_secret is set.
  std::optional<std::string> verified_stream(std::string_view signed_name) const;

  bool open_for_publish() const { return publish_keys_.empty() && admin_key_.empty(); }
  bool open_for_read() const { return jwt_secret_.empty(); }

 private:
  bool is_admin(std::string_view bearer) const;

  std::vector<std::string> publish_keys_;
  std::string admin_key_;
  std::string jwt_secret_;
  std::string streams_key_;
  std::vector<std::string> allowed_origins_;
};

// The credential in "Bearer <x>" ("" when the header is not of that form).
std::string_view bearer_of(std::string_view authorization);

}  // namespace seqcast::auth
