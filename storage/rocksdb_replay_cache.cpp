// The replay cache in RocksDB.
#include "rocksdb_replay_cache.hpp"

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <limits>
#include <mutex>
#include <unordered_map>

#include "cache_key.hpp"

namespace seqcast::storage {

namespace {

// Sorts before every channel key: channel row ids start at 1.
const std::string database_id_key = std::string(8, '\0') + "database_id";

// A channel's footprint, estimated from what we wrote (and measured at open).
struct channel_usage {
  std::uint64_t bytes = 0;
  seq_t first = 0;               // oldest seq kept (approximately)
  seq_t last = 0;                // newest seq written
  std::uint64_t last_write = 0;  // write tick, for least-recently-written eviction
};

error rocks_error(std::string_view what, const rocksdb::Status& s) {
  return {errc::unavailable, fmt::format("cache {}: {}", what, s.ToString())};
}

std::string encode_value(const stored_message& m) {
  std::string v(8, '\0');
  auto ts = static_cast<std::uint64_t>(m.ts_us);
  for (int i = 7; i >= 0; --i) {
    v[static_cast<std::size_t>(i)] = static_cast<char>(ts & 0xFF);
    ts >>= 8;
  }
  v += m.payload;
  return v;
}

std::int64_t decode_ts(const rocksdb::Slice& v) {
  std::uint64_t ts = 0;
  for (std::size_t i = 0; i < 8 && i < v.size(); ++i)
    ts = (ts << 8) | static_cast<unsigned char>(v[i]);
  return static_cast<std::int64_t>(ts);
}

cache_key end_of(channel_id c) { return make_cache_key(c + 1, 0); }

}  // namespace

struct rocksdb_replay_cache::impl {
  std::unique_ptr<rocksdb::DB> db;
  cache_limits limits;
  std::mutex writer;  // serializes the writers (put, drop, drop_all): usage and trimming
  std::unordered_map<channel_id, channel_usage> usage;  // guarded by writer
  std::uint64_t tick = 0;

  rocksdb::Slice slice(const cache_key& k) const { return {k.data(), k.size()}; }
  void measure_channels();
};

rocksdb_replay_cache::rocksdb_replay_cache() : impl_(std::make_unique<impl>()) {}

rocksdb_replay_cache::~rocksdb_replay_cache() = default;

std::string rocksdb_replay_cache::identity(const std::string& database_id, std::int32_t timeline) {
  return database_id + "@" + std::to_string(timeline);
}

result<std::unique_ptr<rocksdb_replay_cache>> rocksdb_replay_cache::open(
    const std::string& dir, const std::string& database_id, cache_limits limits) {
  std::unique_ptr<rocksdb_replay_cache> cache(new rocksdb_replay_cache());
  cache->impl_->limits = limits;
  rocksdb::Options options;
  options.create_if_missing = true;
  options.max_open_files = 256;  // leave descriptors for sockets
  options.keep_log_file_num = 2;
  auto open_db = [&]() -> rocksdb::Status {
    rocksdb::DB* raw = nullptr;
    auto s = rocksdb::DB::Open(options, dir, &raw);
    cache->impl_->db.reset(raw);
    return s;
  };
  if (auto s = open_db(); !s.ok()) return rocks_error("open", s);

  std::string stored;
  auto s = cache->impl_->db->Get(rocksdb::ReadOptions(), database_id_key, &stored);
  if (!s.ok() && !s.IsNotFound()) return rocks_error("read identity", s);
  if (s.IsNotFound() || stored != database_id) {
    // Filled from another database (or never): its (channel id, seq) keys mean
    // other messages here. Start empty.
    cache->emptied_on_open_ = !s.IsNotFound();
    cache->impl_->db.reset();
    if (auto d = rocksdb::DestroyDB(dir, options); !d.ok()) return rocks_error("reset", d);
    if (auto o = open_db(); !o.ok()) return rocks_error("open", o);
    if (auto p = cache->impl_->db->Put(rocksdb::WriteOptions(), database_id_key, database_id);
        !p.ok()) {
      return rocks_error("write identity", p);
    }
  }
  cache->impl_->measure_channels();
  std::uint64_t total = 0;
  for (const auto& [id, u] : cache->impl_->usage) total += u.bytes;
  cache->total_bytes_ = total;
  return cache;
}

void rocksdb_replay_cache::impl::measure_channels() {
  // Visit each channel's key range once: seek to its first key, then jump past it.
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  it->Seek(slice(make_cache_key(1, 0)));
  while (it->Valid()) {
    auto k = parse_cache_key(std::string_view(it->key().data(), it->key().size()));
    if (!k) break;
    const channel_id c = k->first;
    channel_usage u;
    u.first = k->second;
    const cache_key end = end_of(c);
    it->SeekForPrev(slice(end));
    if (auto last = parse_cache_key(std::string_view(it->key().data(), it->key().size()))) {
      u.last = last->second;
    }
    const cache_key begin = make_cache_key(c, 0);
    rocksdb::Range range(slice(begin), slice(end));
    uint64_t size = 0;
    rocksdb::SizeApproximationOptions opts;
    opts.include_memtables = true;
    opts.include_files = true;
    if (db->GetApproximateSizes(opts, db->DefaultColumnFamily(), &range, 1, &size).ok()) {
      u.bytes = size;
    }
    usage[c] = u;
    it->Seek(slice(end));
  }
}

result<none> rocksdb_replay_cache::put(channel_id channel,
                                       const std::vector<stored_message>& messages) {
  if (messages.empty()) return none{};
  rocksdb::WriteBatch batch;
  std::lock_guard lock(impl_->writer);
  stage(batch, channel, messages);
  return write(batch);
}

result<none> rocksdb_replay_cache::put(const std::vector<channel_messages>& channels) {
  rocksdb::WriteBatch batch;
  std::lock_guard lock(impl_->writer);
  for (const auto& [channel, messages] : channels) {
    if (!messages.empty()) stage(batch, channel, messages);
  }
  if (batch.Count() == 0) return none{};
  return write(batch);
}

void rocksdb_replay_cache::stage(rocksdb::WriteBatch& batch, channel_id channel,
                                 const std::vector<stored_message>& messages) {
  std::uint64_t bytes = 0;
  for (const auto& m : messages) {
    const auto key = make_cache_key(channel, m.seq);
    const auto value = encode_value(m);
    bytes += key.size() + value.size();
    batch.Put(impl_->slice(key), value);
  }
  auto& u = impl_->usage[channel];
  if (u.first == 0) u.first = messages.front().seq;
  u.last = std::max(u.last, messages.back().seq);
  u.bytes += bytes;
  u.last_write = ++impl_->tick;
  total_bytes_ += bytes;
  // Trim the channel to its depth, with some slack so that not every write
  // adds a range tombstone.
  const auto depth = static_cast<seq_t>(impl_->limits.channel_messages);
  if (u.last - u.first + 1 > depth + depth / 8) {
    const seq_t new_first = u.last - depth + 1;
    batch.DeleteRange(impl_->slice(make_cache_key(channel, 0)),
                      impl_->slice(make_cache_key(channel, new_first)));
    const auto kept = static_cast<double>(depth) / static_cast<double>(u.last - u.first + 1);
    const auto new_bytes = static_cast<std::uint64_t>(static_cast<double>(u.bytes) * kept);
    total_bytes_ -= u.bytes - new_bytes;
    u.bytes = new_bytes;
    u.first = new_first;
  }
}

result<none> rocksdb_replay_cache::write(rocksdb::WriteBatch& batch) {
  // No write-ahead log: the cache is never the source of truth. After a
  // crash a channel may lose its newest entries; reads stop at the first
  // missing seq, and the rest comes from PostgreSQL.
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  if (auto s = impl_->db->Write(wo, &batch); !s.ok()) return rocks_error("write", s);
  if (total_bytes_ > impl_->limits.max_bytes) evict_over_budget();
  return none{};
}

void rocksdb_replay_cache::evict_over_budget() {
  while (total_bytes_ > impl_->limits.max_bytes * 7 / 8 && impl_->usage.size() > 1) {
    auto oldest = impl_->usage.begin();
    for (auto it = impl_->usage.begin(); it != impl_->usage.end(); ++it)
      if (it->second.last_write < oldest->second.last_write) oldest = it;
    drop_locked(oldest->first);
  }
}

void rocksdb_replay_cache::drop(channel_id channel) {
  std::lock_guard lock(impl_->writer);
  drop_locked(channel);
}

void rocksdb_replay_cache::drop_locked(channel_id channel) {
  const auto begin = make_cache_key(channel, 0);
  const auto end = end_of(channel);
  // Best effort: a failed delete leaves entries that are still correct (keyed by row id).
  (void)impl_->db->DeleteRange(rocksdb::WriteOptions(), impl_->db->DefaultColumnFamily(),
                               impl_->slice(begin), impl_->slice(end));
  if (auto it = impl_->usage.find(channel); it != impl_->usage.end()) {
    total_bytes_ -= std::min<std::uint64_t>(total_bytes_, it->second.bytes);
    impl_->usage.erase(it);
  }
}

result<none> rocksdb_replay_cache::drop_all(const std::string& database_id) {
  // Channel ids start at 1; the identity key sorts below every channel's range.
  const auto begin = make_cache_key(1, 0);
  const auto end = make_cache_key(std::numeric_limits<channel_id>::max(), 0);
  rocksdb::WriteBatch batch;
  std::lock_guard lock(impl_->writer);
  if (auto s = batch.DeleteRange(impl_->slice(begin), impl_->slice(end)); !s.ok()) {
    return rocks_error("drop all", s);
  }
  if (auto s = batch.Put(database_id_key, database_id); !s.ok()) return rocks_error("drop all", s);
  // Gone or not, nothing old is read again: usage restarts, and a failed write leaves
  // the old identity, which empties the cache at the next open.
  impl_->usage.clear();
  total_bytes_ = 0;
  return write(batch);
}

result<std::vector<stored_message>> rocksdb_replay_cache::read(channel_id channel, seq_t after,
                                                               seq_t to, page_limit limit) const {
  std::vector<stored_message> out;
  if (to <= after || limit.messages == 0) return out;
  const cache_key upper =
      to == std::numeric_limits<seq_t>::max() ? end_of(channel) : make_cache_key(channel, to + 1);
  const rocksdb::Slice upper_slice = impl_->slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro));
  seq_t expect = after + 1;
  std::size_t bytes = 0;
  for (it->Seek(impl_->slice(make_cache_key(channel, expect)));
       it->Valid() && out.size() < limit.messages; it->Next()) {
    auto k = parse_cache_key(std::string_view(it->key().data(), it->key().size()));
    if (!k || k->first != channel || k->second != expect) break;  // a hole: stop here
    const auto v = it->value();
    if (v.size() < 8) break;
    const std::size_t size = v.size() - 8;
    if (!out.empty() && bytes + size > limit.bytes) break;  // the page is full
    bytes += size;
    out.push_back({expect, decode_ts(v), std::string(v.data() + 8, size)});
    ++expect;
  }
  if (!it->status().ok()) return rocks_error("read", it->status());
  return out;
}

}  // namespace seqcast::storage
