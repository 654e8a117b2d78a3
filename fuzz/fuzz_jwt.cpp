// Fuzzes token verification and base64url: junk must be refused, never crash or pass.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "auth/jwt.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace seqcast::auth;
  const std::string_view s(reinterpret_cast<const char*>(data), size);
  if (auto decoded = base64url_decode(s)) {
    if (base64url_decode(base64url_encode(*decoded)) != decoded) __builtin_trap();
  }
  // A forged token cannot verify: the secret below never signs anything here.
  if (verify_hs256(s, "fuzz-secret-never-used-to-sign", 1'800'000'000)) __builtin_trap();
  return 0;
}
