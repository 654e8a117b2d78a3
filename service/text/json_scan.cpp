// A validating JSON scanner that keeps the bytes.
#include "json_scan.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace seqcast::json {

namespace {

// Walks one JSON text. Each parse_* consumes a value at pos_ and returns false
// (with why_ set) on the first error.
class scanner {
 public:
  scanner(std::string_view s, int max_depth) : s_(s), max_depth_(max_depth) {}

  bool parse_value();
  bool parse_string(std::string* decoded);
  bool expect(char c);
  bool at(char c) {
    skip_ws();
    return pos_ < s_.size() && s_[pos_] == c;
  }
  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool at_end() {
    skip_ws();
    return pos_ == s_.size();
  }
  bool fail(std::string why) {
    if (why_.empty()) why_ = fmt::format("{} at byte {}", why, pos_);
    return false;
  }
  std::size_t pos() const { return pos_; }
  std::string_view text() const { return s_; }
  const std::string& why() const { return why_; }

 private:
  bool parse_container(char open, char close);
  bool parse_number();
  bool parse_literal(std::string_view word);
  bool parse_utf8(std::string* decoded);
  bool parse_escape(std::string* decoded);

  std::string_view s_;
  std::size_t pos_ = 0;
  int depth_ = 0;
  int max_depth_;
  std::string why_;
};

bool scanner::expect(char c) {
  if (!at(c)) return fail(fmt::format("expected '{}'", c));
  ++pos_;
  return true;
}

bool scanner::parse_value() {
  skip_ws();
  if (pos_ >= s_.size()) return fail("unexpected end");
  switch (s_[pos_]) {
    case '{':
      return parse_container('{', '}');
    case '[':
      return parse_container('[', ']');
    case '"':
      return parse_string(nullptr);
    case 't':
      return parse_literal("true");
    case 'f':
      return parse_literal("false");
    case 'n':
      return parse_literal("null");
    default:
      return parse_number();
  }
}

bool scanner::parse_container(char open, char close) {
  if (++depth_ > max_depth_) return fail("nested too deep");
  ++pos_;  // the opening bracket
  if (at(close)) {
    ++pos_;
    --depth_;
    return true;
  }
  for (;;) {
    if (open == '{') {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') return fail("expected a string key");
      if (!parse_string(nullptr) || !expect(':')) return false;
    }
    if (!parse_value()) return false;
    if (at(',')) {
      ++pos_;
      continue;
    }
    if (!expect(close)) return false;
    --depth_;
    return true;
  }
}

bool scanner::parse_literal(std::string_view word) {
  if (s_.substr(pos_, word.size()) != word) return fail("invalid literal");
  pos_ += word.size();
  return true;
}

bool scanner::parse_number() {
  auto digit = [&] { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; };
  auto digits = [&] {
    if (!digit()) return false;
    while (digit()) ++pos_;
    return true;
  };
  if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
  if (pos_ < s_.size() && s_[pos_] == '0') {
    ++pos_;
  } else if (!digits()) {
    return fail("invalid value");
  }
  if (pos_ < s_.size() && s_[pos_] == '.') {
    ++pos_;
    if (!digits()) return fail("invalid number");
  }
  if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
    ++pos_;
    if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
    if (!digits()) return fail("invalid number");
  }
  return true;
}

void append_utf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool scanner::parse_escape(std::string* decoded) {
  ++pos_;  // the backslash
  if (pos_ >= s_.size()) return fail("unterminated string");
  char c = s_[pos_++];
  static constexpr std::string_view simple = "\"\\/bfnrt", value = "\"\\/\b\f\n\r\t";
  if (auto k = simple.find(c); k != std::string_view::npos) {
    if (decoded) *decoded += value[k];
    return true;
  }
  if (c != 'u') return fail("invalid escape");
  auto hex4 = [&](unsigned& v) {
    if (pos_ + 4 > s_.size()) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) {
      char h = s_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9')
        v |= static_cast<unsigned>(h - '0');
      else if (h >= 'a' && h <= 'f')
        v |= static_cast<unsigned>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        v |= static_cast<unsigned>(h - 'A' + 10);
      else
        return false;
    }
    return true;
  };
  unsigned cp = 0;
  if (!hex4(cp)) return fail("invalid \\u escape");
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    unsigned lo = 0;
    if (s_.substr(pos_, 2) != "\\u") return fail("unpaired surrogate");
    pos_ += 2;
    if (!hex4(lo) || lo < 0xDC00 || lo > 0xDFFF) return fail("unpaired surrogate");
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
    return fail("unpaired surrogate");
  }
  if (decoded) append_utf8(*decoded, cp);
  return true;
}

bool scanner::parse_utf8(std::string* decoded) {
  const auto b0 = static_cast<unsigned char>(s_[pos_]);
  int len;
  unsigned min, cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    min = 0x80;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    min = 0x800;
    cp = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    min = 0x10000;
    cp = b0 & 0x07;
  } else
    return fail("invalid UTF-8");
  if (pos_ + static_cast<std::size_t>(len) > s_.size()) return fail("invalid UTF-8");
  for (int i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s_[pos_ + static_cast<std::size_t>(i)]);
    if ((b & 0xC0) != 0x80) return fail("invalid UTF-8");
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return fail("invalid UTF-8");
  if (decoded) decoded->append(s_.substr(pos_, static_cast<std::size_t>(len)));
  pos_ += static_cast<std::size_t>(len);
  return true;
}

bool scanner::parse_string(std::string* decoded) {
  ++pos_;  // the opening quote
  while (pos_ < s_.size()) {
    const auto c = static_cast<unsigned char>(s_[pos_]);
    if (c == '"') {
      ++pos_;
      return true;
    }
    if (c == '\\') {
      if (!parse_escape(decoded)) return false;
    } else if (c < 0x20) {
      return fail("control character in string");
    } else if (c < 0x80) {
      if (decoded) *decoded += static_cast<char>(c);
      ++pos_;
    } else if (!parse_utf8(decoded)) {
      return false;
    }
  }
  return fail("unterminated string");
}

// Reads the object key at the cursor, decoded.
bool parse_key(scanner& sc, std::string& key) {
  sc.skip_ws();
  if (!sc.at('"')) return sc.fail("expected a string key");
  key.clear();
  return sc.parse_string(&key) && sc.expect(':');
}

bool parse_batch_item(scanner& sc, batch_item& item) {
  if (!sc.expect('{')) return false;
  bool has_channel = false, has_data = false;
  std::string key;
  if (!sc.at('}')) {
    do {
      if (!parse_key(sc, key)) return false;
      sc.skip_ws();
      if (key == "channel" || key == "idempotency_key") {
        if (!sc.at('"')) return sc.fail(fmt::format("\"{}\" must be a string", key));
        std::string v;
        if (!sc.parse_string(&v)) return false;
        if (key == "channel") {
          item.channel = std::move(v);
          has_channel = true;
        } else {
          item.idempotency_key = std::move(v);
        }
      } else {
        const std::size_t start = sc.pos();
        if (!sc.parse_value()) return false;
        if (key == "data") {
          item.data = sc.text().substr(start, sc.pos() - start);
          has_data = true;
        }
      }
    } while (sc.at(',') && sc.expect(','));
  }
  if (!sc.expect('}')) return false;
  if (!has_channel) return sc.fail("a message needs \"channel\"");
  if (!has_data) return sc.fail("a message needs \"data\"");
  return true;
}

}  // namespace

std::optional<std::string> validate(std::string_view text, int max_depth) {
  scanner sc(text, max_depth);
  if (!sc.parse_value()) return sc.why();
  if (!sc.at_end()) return fmt::format("unexpected data after the value at byte {}", sc.pos());
  return std::nullopt;
}

std::optional<std::string> parse_batch(std::string_view body, int max_depth,
                                       std::vector<batch_item>& out) {
  // Validate first: the walk below assumes well-formed JSON everywhere it skips.
  if (auto why = validate(body, max_depth)) return why;
  scanner sc(body, max_depth);
  bool has_messages = false;
  std::string key;
  if (!sc.expect('{')) return sc.why();
  if (!sc.at('}')) {
    do {
      if (!parse_key(sc, key)) return sc.why();
      if (key != "messages") {
        if (!sc.parse_value()) return sc.why();
        continue;
      }
      has_messages = true;
      if (!sc.expect('[')) return "\"messages\" must be an array";
      if (!sc.at(']')) {
        do {
          batch_item item;
          if (!parse_batch_item(sc, item)) return sc.why();
          out.push_back(std::move(item));
        } while (sc.at(',') && sc.expect(','));
      }
      if (!sc.expect(']')) return sc.why();
    } while (sc.at(',') && sc.expect(','));
  }
  if (!has_messages) return "the body needs \"messages\"";
  if (out.empty()) return "\"messages\" is empty";
  return std::nullopt;
}

std::string quoted(std::string_view s) {
  std::string out;
  append_string(out, s);
  return out;
}

void append_string(std::string& out, std::string_view s) {
  out += '"';
  // Most strings need no escape: append them whole.
  const bool plain = std::all_of(
      s.begin(), s.end(), [](unsigned char c) { return c >= 0x20 && c != '"' && c != '\\'; });
  if (plain) {
    out += s;
    out += '"';
    return;
  }
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20)
          out += fmt::format("\\u{:04x}", c);
        else
          out += static_cast<char>(c);
    }
  }
  out += '"';
}

}  // namespace seqcast::json
