// Stream names signed by a Rails app, as turbo-rails signs them: Active
// Support's MessageVerifier with SHA256 and the JSON serializer, no purpose or
// expiry (the same bytes from Rails 6.1 to 8.1):
//
//   strict_base64(JSON(name)) + "--" + hex(HMAC-SHA256(key, the base64 text))
//
// key "secret", name "room:1" →
// InJvb206MSI=--bff11d45b76e9b980cb31b0eda13d83a55e9f5689a5b7b9fd8fc7936c27123e9
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace seqcast::auth {

// The name behind `signed_name` when its digest matches `key` (compared in
// constant time) and its data decodes to a JSON string; nullopt otherwise.
// The digest covers the base64 text as received; url-safe base64 is accepted
// too (Rails 7.2.3+ verifiers do). An empty key verifies nothing.
std::optional<std::string> verify_signed_stream(std::string_view signed_name, std::string_view key);

// Signs `name` the same way (JSON-encoded as Ruby's JSON.dump does for a
// string): for tests and tooling.
std::string sign_stream(std::string_view name, std::string_view key);

// The streams_secret setting as key bytes: "hex:<hex digits>" is decoded (the
// 64-byte key turbo-rails derives by default, printed with unpack1("H*")),
// anything else is the key's text as is. nullopt for a bad hex form.
std::optional<std::string> streams_key(std::string_view setting);

}  // namespace seqcast::auth
