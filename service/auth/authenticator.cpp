// Who may publish, administer, read and subscribe, and from which browser origins.
#include "auth/authenticator.hpp"

#include <chrono>

#include "auth/jwt.hpp"
#include "auth/signed_stream.hpp"

namespace seqcast::auth {

namespace {

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  }
  return true;
}

// "https://*.example.com" matches "https://a.example.com" and "https://a.b.example.com".
bool origin_matches(std::string_view pattern, std::string_view origin) {
  const auto star = pattern.find("://*.");
  if (star == std::string_view::npos) return pattern == origin;
  const std::string_view scheme = pattern.substr(0, star + 3);  // "https://"
  const std::string_view suffix = pattern.substr(star + 4);     // ".example.com"
  if (!origin.starts_with(scheme) || !origin.ends_with(suffix)) return false;
  return origin.size() > scheme.size() + suffix.size();  // a non-empty subdomain
}

}  // namespace

std::string_view bearer_of(std::string_view authorization) {
  if (!iequals_prefix(authorization, "Bearer ")) return {};
  auto v = authorization.substr(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return v;
}

bool reader::may_read(std::string_view channel) const {
  if (everything) return true;
  for (const auto& c : channels) {
    if (!c.empty() && c.back() == '*') {
      if (channel.starts_with(std::string_view(c).substr(0, c.size() - 1))) return true;
    } else if (c == channel) {
      return true;
    }
  }
  return false;
}

authenticator::authenticator(const config& cfg)
    : publish_keys_(cfg.publish_keys),
      admin_key_(cfg.admin_key),
      jwt_secret_(cfg.jwt_secret),
      streams_key_(streams_key(cfg.streams_secret).value_or("")),
      allowed_origins_(cfg.allowed_origins) {}

std::optional<std::string> authenticator::verified_stream(std::string_view signed_name) const {
  return verify_signed_stream(signed_name, streams_key_);
}

bool authenticator::is_admin(std::string_view bearer) const {
  return !admin_key_.empty() && !bearer.empty() && secrets_equal(bearer, admin_key_);
}

verdict authenticator::publish(std::string_view authorization) const {
  if (open_for_publish()) return verdict::allowed;
  const auto key = bearer_of(authorization);
  if (key.empty()) return verdict::unauthorized;
  bool ok = is_admin(key);
  // Check every key (no early exit), so timing says nothing about which matched.
  for (const auto& k : publish_keys_) ok = secrets_equal(key, k) || ok;
  return ok ? verdict::allowed : verdict::unauthorized;
}

verdict authenticator::admin(std::string_view authorization) const {
  if (open_for_publish()) return verdict::allowed;
  const auto key = bearer_of(authorization);
  if (key.empty()) return verdict::unauthorized;
  if (is_admin(key)) return verdict::allowed;
  // A valid publish key is a known caller without the right: 403, not 401.
  bool publisher = false;
  for (const auto& k : publish_keys_) publisher = secrets_equal(key, k) || publisher;
  return publisher ? verdict::forbidden : verdict::unauthorized;
}

std::optional<reader> authenticator::read(std::string_view authorization,
                                          std::optional<std::string_view> token) const {
  std::string_view credential = bearer_of(authorization);
  if (credential.empty() && token) credential = *token;
  if (!credential.empty() && is_admin(credential)) return reader{true, {}};
  if (open_for_read()) return reader{true, {}};
  if (credential.empty()) return std::nullopt;
  auto claims = verify_hs256(credential, jwt_secret_, now_seconds());
  if (!claims) return std::nullopt;
  return reader{false, std::move(claims->channels)};
}

bool authenticator::origin_allowed(std::optional<std::string_view> origin) const {
  if (!origin || allowed_origins_.empty()) return true;
  for (const auto& p : allowed_origins_)
    if (origin_matches(p, *origin)) return true;
  return false;
}

}  // namespace seqcast::auth
