// Every metric of a node, declared once: Prometheus text, JSON, and a short history.
#include "metrics/registry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "text/json_scan.hpp"

namespace seqcast::metrics {

namespace {

// A rate or a mean in JSON: finite, rounded to `digits` decimals.
std::string number(double v, int digits) {
  if (!std::isfinite(v)) return "null";
  const double scale = std::pow(10.0, digits);
  return fmt::format("{}", std::round(v * scale) / scale);
}

}  // namespace

registry::registry(std::chrono::seconds interval, std::size_t samples)
    : interval_(interval), capacity_(std::max<std::size_t>(samples, 2)) {}

void registry::counter(std::string name, std::string help, read_fn value_of) {
  std::vector<std::pair<std::string, read_fn>> one;
  one.emplace_back("", std::move(value_of));
  metrics_.push_back(
      {std::move(name), std::move(help), type::counter, {}, std::move(one), nullptr});
}

void registry::gauge(std::string name, std::string help, read_fn value_of) {
  std::vector<std::pair<std::string, read_fn>> one;
  one.emplace_back("", std::move(value_of));
  metrics_.push_back({std::move(name), std::move(help), type::gauge, {}, std::move(one), nullptr});
}

void registry::gauge_family(std::string name, std::string help, std::string label,
                            std::vector<std::pair<std::string, read_fn>> members) {
  metrics_.push_back({std::move(name), std::move(help), type::gauge, std::move(label),
                      std::move(members), nullptr});
}

void registry::histogram(std::string name, std::string help, const metrics::histogram& h) {
  metrics_.push_back({std::move(name), std::move(help), type::histogram, {}, {}, &h});
}

std::string registry::prometheus() const {
  std::string out;
  for (const auto& m : metrics_) {
    if (m.kind == type::histogram) {
      m.hist->write(out, m.name, m.help);
      continue;
    }
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", m.name, m.help, m.name,
                       m.kind == type::counter ? "counter" : "gauge");
    for (const auto& [label_value, value_of] : m.values) {
      if (m.label.empty()) {
        out += fmt::format("{} {}\n", m.name, value_of());
      } else {
        out += fmt::format("{}{{{}=\"{}\"}} {}\n", m.name, m.label, label_value, value_of());
      }
    }
  }
  return out;
}

std::string registry::json() const {
  std::string out = "{";
  for (const auto& m : metrics_) {
    if (out.size() > 1) out += ',';
    out += json::quoted(m.name);
    out += ':';
    if (m.kind == type::histogram) {
      out += fmt::format(R"({{"count":{},"sum":{}}})", m.hist->count(),
                         static_cast<double>(m.hist->sum_micros()) / 1e6);
    } else if (m.label.empty()) {
      out += std::to_string(m.values.front().second());
    } else {
      out += '{';
      for (std::size_t i = 0; i < m.values.size(); ++i) {
        out += fmt::format("{}{}:{}", i ? "," : "", json::quoted(m.values[i].first),
                           m.values[i].second());
      }
      out += '}';
    }
  }
  out += '}';
  return out;
}

void registry::sample(std::int64_t unix_ms) {
  snapshot s;
  s.unix_ms = unix_ms;
  for (const auto& m : metrics_) {
    if (m.kind == type::histogram) {
      s.values.push_back(m.hist->count());
      s.values.push_back(m.hist->sum_micros());
      continue;
    }
    for (const auto& member : m.values) s.values.push_back(member.second());
  }
  std::lock_guard lock(mutex_);
  history_.push_back(std::move(s));
  while (history_.size() > capacity_) history_.pop_front();
}

std::string registry::history_json() const {
  std::lock_guard lock(mutex_);
  std::string out = fmt::format(R"({{"interval_seconds":{},"t":[)", interval_.count());
  // Interval i runs from sample i-1 to sample i; a single sample has no interval yet.
  for (std::size_t i = 1; i < history_.size(); ++i) {
    out += fmt::format("{}{}", i > 1 ? "," : "", history_[i].unix_ms);
  }
  out += R"(],"series":{)";
  // Seconds between two samples, as measured (the timer may drift), never zero.
  auto seconds = [&](std::size_t i) {
    const auto ms = history_[i].unix_ms - history_[i - 1].unix_ms;
    return ms > 0 ? static_cast<double>(ms) / 1000.0 : static_cast<double>(interval_.count());
  };
  // The values of column `c` over the intervals, as rates, values or means.
  auto values = [&](type kind, std::size_t c) {
    std::string v = "[";
    for (std::size_t i = 1; i < history_.size(); ++i) {
      if (i > 1) v += ',';
      const auto& now = history_[i].values;
      const auto& before = history_[i - 1].values;
      if (kind == type::gauge) {
        v += std::to_string(now[c]);
      } else if (kind == type::counter) {
        const double delta = now[c] >= before[c] ? static_cast<double>(now[c] - before[c]) : 0.0;
        v += number(delta / seconds(i), 3);
      } else {
        // Column c counts observations, c + 1 sums them (millionths).
        const auto n = now[c] - before[c];
        v += n == 0 ? std::string("null")
                    : number(static_cast<double>(now[c + 1] - before[c + 1]) / 1e6 /
                                 static_cast<double>(n),
                             6);
      }
    }
    return v + "]";
  };
  std::size_t column = 0;
  bool first = true;
  for (const auto& m : metrics_) {
    out += fmt::format(R"({}{}:{{"kind":"{}","values":)", first ? "" : ",", json::quoted(m.name),
                       m.kind == type::counter ? "rate"
                       : m.kind == type::gauge ? "value"
                                               : "mean");
    first = false;
    if (m.kind == type::histogram) {
      out += values(m.kind, column);
      column += 2;
    } else if (m.label.empty()) {
      out += values(m.kind, column++);
    } else {
      out += '{';
      for (std::size_t k = 0; k < m.values.size(); ++k) {
        out += fmt::format("{}{}:{}", k ? "," : "", json::quoted(m.values[k].first),
                           values(m.kind, column++));
      }
      out += '}';
    }
    out += '}';
  }
  out += "}}";
  return out;
}

}  // namespace seqcast::metrics
