// Where seqcast's data lives: a PostgreSQL server and the schema of its tables.
#include "database.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cstdlib>
#include <optional>

namespace seqcast::storage {

namespace {

bool is_uri(std::string_view url) {
  return url.starts_with("postgres://") || url.starts_with("postgresql://");
}

// A URI's query parameters: where the value of `key` is ([begin, end) in `url`).
std::optional<std::pair<std::size_t, std::size_t>> uri_param(std::string_view url,
                                                             std::string_view key) {
  auto q = url.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::size_t at = q + 1;
  while (at <= url.size()) {
    std::size_t end = url.find('&', at);
    if (end == std::string_view::npos) end = url.size();
    std::string_view param = url.substr(at, end - at);
    if (param.starts_with(key) && param.size() > key.size() && param[key.size()] == '=') {
      return std::pair{at + key.size() + 1, end};
    }
    at = end + 1;
  }
  return std::nullopt;
}

// A key=value conninfo's value of `key`: [begin, end) in `info`, quoted or not.
std::optional<std::pair<std::size_t, std::size_t>> conninfo_param(std::string_view info,
                                                                  std::string_view key) {
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < info.size() && std::isspace(static_cast<unsigned char>(info[i]))) ++i;
  };
  while (true) {
    skip_space();
    if (i >= info.size()) return std::nullopt;
    const std::size_t key_begin = i;
    while (i < info.size() && info[i] != '=' && !std::isspace(static_cast<unsigned char>(info[i])))
      ++i;
    std::string_view k = info.substr(key_begin, i - key_begin);
    skip_space();
    if (i >= info.size() || info[i] != '=') return std::nullopt;  // malformed: libpq will say
    ++i;
    skip_space();
    const std::size_t value_begin = i;
    if (i < info.size() && info[i] == '\'') {
      for (++i; i < info.size() && info[i] != '\''; ++i)
        if (info[i] == '\\') ++i;
      if (i < info.size()) ++i;  // the closing quote
    } else {
      while (i < info.size() && !std::isspace(static_cast<unsigned char>(info[i]))) ++i;
    }
    if (k == key) return std::pair{value_begin, i};
  }
}

// For a URI's query: everything but unreserved characters percent-encoded.
std::string percent_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace

bool valid_schema_name(std::string_view name) {
  if (name.empty() || name.size() > 63 || std::isdigit(static_cast<unsigned char>(name[0])))
    return false;
  for (char c : name) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_'))
      return false;
  }
  return true;
}

namespace {

// `env_options`: PGOPTIONS, put before the schema's search_path when the URL has no
// options of its own (those win over PGOPTIONS in libpq, and are kept).
std::string with_settings(const database& db, std::string_view env_options) {
  std::string out = db.url;
  const bool uri = is_uri(out);
  auto has = [&](std::string_view key) {
    return uri ? uri_param(out, key).has_value() : conninfo_param(out, key).has_value();
  };
  auto add = [&](std::string_view key, std::string_view value) {
    if (has(key)) return;
    if (uri) {
      out += (out.find('?') == std::string::npos ? '?' : '&');
      out += fmt::format("{}={}", key, value);
    } else {
      out += fmt::format(" {}={}", key, value);
    }
  };
  add("connect_timeout", "5");
  add("keepalives_idle", "10");
  add("keepalives_interval", "3");
  add("keepalives_count", "3");
  add("application_name", "seqcast");
  // With several hosts (a primary and its standbys), connect to the one that takes
  // writes, wherever it is now: every connection of a node writes or must read what
  // was written. PGTARGETSESSIONATTRS, when set, is libpq's to apply.
  if (const char* t = std::getenv("PGTARGETSESSIONATTRS"); t == nullptr || *t == '\0') {
    add("target_session_attrs", "read-write");
  }

  // The schema's search_path goes last among the options: the server applies them in
  // order, so it wins over any search_path the URL sets.
  const std::string setting = "-csearch_path=" + db.schema;
  if (uri) {
    if (auto v = uri_param(out, "options")) {
      out.insert(v->second, "%20-csearch_path%3D" + db.schema);
    } else {
      add("options",
          percent_encode(env_options.empty() ? setting
                                             : fmt::format("{} {}", env_options, setting)));
    }
  } else if (auto v = conninfo_param(out, "options")) {
    const auto [begin, end] = *v;
    if (begin < end && out[begin] == '\'') {
      out.insert(end - 1, " " + setting);
    } else {
      const std::string given = out.substr(begin, end - begin);
      out.replace(begin, end - begin, fmt::format("'{} {}'", given, setting));
    }
  } else {
    std::string value = env_options.empty() ? setting : fmt::format("{} {}", env_options, setting);
    std::string quoted;
    for (char c : value) {
      if (c == '\'' || c == '\\') quoted += '\\';
      quoted += c;
    }
    out += fmt::format(" options='{}'", quoted);
  }
  return out;
}

}  // namespace

std::string connection_string(const database& db) {
  // An `options` of ours replaces any PGOPTIONS libpq would have read from the
  // environment: keep them in front of the schema's.
  const char* env = std::getenv("PGOPTIONS");
  if (env == nullptr || *env == '\0') return with_settings(db, "");
  return with_settings(db, env);
}

}  // namespace seqcast::storage
