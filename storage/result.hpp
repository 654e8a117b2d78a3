// storage::result<T>: a value or an error, returned between modules instead of exceptions.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace seqcast::storage {

// What went wrong, in the terms a caller acts on.
enum class errc {
  unavailable,  // PostgreSQL or the cache cannot be reached now; retry later (HTTP 503)
  conflict,     // the request contradicts committed state (HTTP 409)
  not_found,    // no such channel or row (HTTP 404)
  internal,     // a bug or an unexpected database error (HTTP 500, logged)
};

struct error {
  errc code;
  std::string message;
};

template <class T>
class result {
 public:
  result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  result(error e) : v_(std::move(e)) {}      // NOLINT: implicit by design

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  const error& err() const { return std::get<1>(v_); }

 private:
  std::variant<T, error> v_;
};

struct none {};  // the value of a result that carries nothing but success

}  // namespace seqcast::storage
