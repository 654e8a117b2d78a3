// The hub's sequencing and catch-up against an in-memory history: resume decisions,
// replay paced by grants (big messages), retried reads, heads re-read after the
// listener returns.
#include "hub/hub.hpp"

#include <gtest/gtest.h>

#include "support/memory_history.hpp"

namespace seqcast::hub {
namespace {

using namespace std::chrono_literals;

struct delivery {
  std::uint64_t id;
  std::vector<frame_ptr> frames;
  pacing p;
};

class fake_subscriber : public subscriber {
 public:
  std::size_t home() const override { return 0; }
  void deliver_here(std::uint64_t id, const frame_batch& frames, pacing p) override {
    got.push_back({id, *frames, p});
  }
  void flush_here() override {}

  std::vector<storage::seq_t> seqs() const {
    std::vector<storage::seq_t> out;
    for (const auto& d : got)
      for (const auto& f : d.frames)
        if (f->type == frame::kind::message) out.push_back(f->seq);
    return out;
  }
  std::vector<const frame*> of_kind(frame::kind k) const {
    std::vector<const frame*> out;
    for (const auto& d : got)
      for (const auto& f : d.frames)
        if (f->type == k) out.push_back(f.get());
    return out;
  }
  std::vector<delivery> got;
};

std::vector<storage::seq_t> iota(storage::seq_t from, storage::seq_t to) {
  std::vector<storage::seq_t> out;
  for (auto s = from; s <= to; ++s) out.push_back(s);
  return out;
}

class HubTest : public ::testing::Test {
 protected:
  HubTest()
      : history_(ex_),
        hub_([this](std::function<void()> f) { ex_.post(std::move(f)); },
             [this](std::chrono::milliseconds d, std::function<void()> f) {
               ex_.post_after(d, std::move(f));
             },
             [this](std::size_t, std::chrono::milliseconds d, std::function<void()> f) {
               if (d.count() > 0) return ex_.post_after(d, std::move(f));
               ex_.post(std::move(f));
             },
             history_, limits()) {}

  static hub_limits limits() {
    hub_limits l;
    l.page_messages = 500;
    l.ring_messages = 8;  // small: replays reach the history
    l.ring_bytes = 1 << 20;
    return l;
  }

  std::shared_ptr<fake_subscriber> subscriber() {
    auto s = std::make_shared<fake_subscriber>();
    subs_.push_back(s);
    return s;
  }

  // Publishes on `channel` as another node would: in the log, then a NOTIFY.
  void publish(const std::string& channel, std::string payload) {
    auto a = history_.append(channel, std::move(payload));
    hub_.on_notify({a});
    ex_.run();
  }

  test::manual_executor ex_;
  test::memory_history history_;
  hub hub_;
  std::vector<std::shared_ptr<fake_subscriber>> subs_;
};

TEST(ResumeDecision, ByPositionAndEpoch) {
  channel_state st;
  st.id = 7;
  st.epoch = "e7";
  st.first_seq = 11;
  st.head = 20;
  auto d = decide_resume(st, std::nullopt, std::nullopt);
  EXPECT_EQ(d.action, resume_decision::kind::live);
  EXPECT_TRUE(d.reset.empty());
  d = decide_resume(st, 15, std::string("e7"));
  EXPECT_EQ(d.action, resume_decision::kind::replay);
  EXPECT_EQ(d.after, 15);
  EXPECT_TRUE(d.reset.empty());
  d = decide_resume(st, 20, std::string("e7"));
  EXPECT_EQ(d.action, resume_decision::kind::live);
  d = decide_resume(st, 3, std::string("e7"));
  EXPECT_EQ(d.reset, "truncated");
  EXPECT_EQ(d.reset_after, 3);
  EXPECT_EQ(d.after, 10);
  d = decide_resume(st, 10, std::string("e7"));  // exactly the oldest retained: no gap
  EXPECT_TRUE(d.reset.empty());
  d = decide_resume(st, 15, std::string("old"));
  EXPECT_EQ(d.reset, "epoch_changed");
  EXPECT_EQ(d.after, 10);
  EXPECT_EQ(d.action, resume_decision::kind::replay);
  channel_state empty;
  d = decide_resume(empty, 5, std::nullopt);  // a position in a channel with no history
  EXPECT_EQ(d.reset, "epoch_changed");
  EXPECT_EQ(d.after, 0);
  EXPECT_EQ(d.action, resume_decision::kind::live);
}

TEST_F(HubTest, BigMessagesReplayInPagesWithinEachGrant) {
  const std::string big(100 * 1024, 'x');
  for (int i = 0; i < 200; ++i) history_.append("big", "\"" + big + "\"");
  auto s = subscriber();
  const std::size_t grant = 1 << 20;
  hub_.subscribe(1, s, "big", 0, std::nullopt, grant);
  ex_.run();
  std::size_t pages = 0;
  for (int round = 0; round < 1000 && s->seqs().size() < 200; ++round) {
    ASSERT_FALSE(s->got.empty());
    const auto& last = s->got.back();
    if (last.p != pacing::want_more) continue;
    std::size_t bytes = 0;
    for (const auto& f : last.frames) bytes += f->wire_size();
    EXPECT_LE(bytes, grant) << "page " << pages;
    ++pages;
    hub_.more(1, "big", grant);
    ex_.run();
  }
  EXPECT_EQ(s->seqs(), iota(1, 200));
  EXPECT_EQ(s->got.back().p, pacing::caught_up);
  EXPECT_GE(pages, 19u);  // ~9 messages of 100 KiB per 1 MiB grant
  for (auto b : history_.read_log_bytes) EXPECT_LE(b, grant);
  // Live from here on.
  publish("big", "\"live\"");
  EXPECT_EQ(s->seqs(), iota(1, 201));
}

TEST_F(HubTest, WithoutAGrantNothingIsSentUntilOneComes) {
  for (int i = 0; i < 5; ++i) history_.append("c", "1");
  auto s = subscriber();
  hub_.subscribe(1, s, "c", 0, std::nullopt, 0);
  ex_.run();
  ASSERT_EQ(s->got.size(), 1u);
  EXPECT_EQ(s->got[0].frames[0]->type, frame::kind::subscribed);
  EXPECT_EQ(s->got[0].p, pacing::want_more);
  EXPECT_TRUE(s->seqs().empty());
  hub_.more(1, "c", 4096);
  ex_.run();
  EXPECT_EQ(s->seqs(), iota(1, 5));
  EXPECT_EQ(s->got.back().p, pacing::caught_up);
}

TEST_F(HubTest, ALargeMessageAlwaysFitsItsOwnPage) {
  history_.append("c", std::string(5000, '1'));
  history_.append("c", std::string(5000, '2'));
  auto s = subscriber();
  hub_.subscribe(1, s, "c", 0, std::nullopt, 100);  // smaller than one message
  ex_.run();
  EXPECT_EQ(s->seqs(), iota(1, 1));
  hub_.more(1, "c", 100);
  ex_.run();
  EXPECT_EQ(s->seqs(), iota(1, 2));
}

TEST_F(HubTest, ALiveOnlySubscriberIsReleasedAtOnce) {
  history_.append("c", "1");
  auto s = subscriber();
  hub_.subscribe(1, s, "c", std::nullopt, std::nullopt, 0);
  ex_.run();
  ASSERT_EQ(s->got.size(), 1u);
  EXPECT_EQ(s->got[0].p, pacing::caught_up);
  EXPECT_EQ(s->got[0].frames[0]->reset_to, 1);  // skips up to the head
  publish("c", "2");
  EXPECT_EQ(s->seqs(), iota(2, 2));
}

TEST_F(HubTest, TrimmedHistoryIsAnnouncedWithTheExactRangeMissed) {
  for (int i = 0; i < 20; ++i) history_.append("c", "1");
  auto s = subscriber();
  // Subscribed while 1..20 exist; then 1..14 are trimmed before the replay reads them.
  history_.fail_read_log = 0;
  hub_.subscribe(1, s, "c", 0, std::string("e1"), 0);
  ex_.run();
  history_.trim("c", 15);
  hub_.more(1, "c", 1 << 20);
  ex_.run();
  const auto resets = s->of_kind(frame::kind::reset);
  ASSERT_EQ(resets.size(), 1u);
  EXPECT_NE(resets[0]->text.find("\"reason\":\"truncated\""), std::string::npos) << resets[0]->text;
  EXPECT_NE(resets[0]->text.find("\"missed\":[1,14]"), std::string::npos) << resets[0]->text;
  EXPECT_EQ(s->seqs(), iota(15, 20));
}

TEST_F(HubTest, AFailedHeadLoadIsRetriedWhileTheSubscriberWaits) {
  history_.append("c", "1");
  history_.fail_head = 3;
  auto s = subscriber();
  hub_.subscribe(1, s, "c", 0, std::nullopt, 1 << 20);
  ex_.run();
  EXPECT_TRUE(s->got.empty());  // no error frame: it waits
  ex_.advance(10s);
  ASSERT_FALSE(s->got.empty());
  EXPECT_EQ(s->got[0].frames[0]->type, frame::kind::subscribed);
  EXPECT_TRUE(s->of_kind(frame::kind::error).empty());
  EXPECT_EQ(s->seqs(), iota(1, 1));
  EXPECT_EQ(hub_.counters().read_retries.load(), 3u);
}

TEST_F(HubTest, AFailedReplayReadIsRetried) {
  for (int i = 0; i < 20; ++i) history_.append("c", "1");
  history_.fail_read_log = 2;
  auto s = subscriber();
  hub_.subscribe(1, s, "c", 0, std::nullopt, 1 << 20);
  ex_.run();
  EXPECT_TRUE(s->seqs().empty());
  ex_.advance(10s);
  EXPECT_EQ(s->seqs(), iota(1, 20));
}

TEST_F(HubTest, HeadsAreReReadUntilItWorksAfterTheListenerReturns) {
  history_.append("quiet", "1");
  auto s = subscriber();
  hub_.subscribe(1, s, "quiet", std::nullopt, std::nullopt, 0);
  ex_.run();
  // Published while the listener was away: no NOTIFY ever comes for these.
  history_.append("quiet", "2");
  history_.append("quiet", "3");
  history_.fail_heads = 2;
  hub_.on_listener_connected();
  ex_.run();
  EXPECT_TRUE(s->seqs().empty());
  ex_.advance(10s);
  EXPECT_EQ(s->seqs(), iota(2, 3));
  EXPECT_EQ(ex_.pending_timers(), 0u);  // and it stops retrying once it worked
}

TEST_F(HubTest, AFailedLiveReadIsRetried) {
  history_.append("c", "1");
  auto s = subscriber();
  hub_.subscribe(1, s, "c", std::nullopt, std::nullopt, 0);
  ex_.run();
  history_.fail_read_log = 3;
  publish("c", "2");
  EXPECT_TRUE(s->seqs().empty());
  ex_.advance(10s);
  EXPECT_EQ(s->seqs(), iota(2, 2));
}

TEST_F(HubTest, ManyReplayingSubscribersShareOnePostgresReadAndAllCatchUp) {
  for (int i = 0; i < 100; ++i) history_.append("c", "12345");
  std::vector<std::shared_ptr<fake_subscriber>> all;
  for (std::uint64_t id = 1; id <= 50; ++id) {
    all.push_back(subscriber());
    hub_.subscribe(id, all.back(), "c", 0, std::nullopt, 1 << 20);
  }
  ex_.run();
  for (const auto& s : all) EXPECT_EQ(s->seqs(), iota(1, 100));
  EXPECT_EQ(history_.read_log_calls, 1);
  publish("c", "6");
  for (const auto& s : all) EXPECT_EQ(s->seqs(), iota(1, 101));
}

TEST_F(HubTest, ANewEpochResetsLiveAndReplayingSubscribers) {
  for (int i = 0; i < 10; ++i) history_.append("c", "1");
  auto live = subscriber();
  auto replaying = subscriber();
  hub_.subscribe(1, live, "c", std::nullopt, std::nullopt, 0);
  hub_.subscribe(2, replaying, "c", 0, std::nullopt, 0);  // waits for a grant
  ex_.run();
  // DELETE and a new first publish elsewhere: a new row, a new epoch.
  history_.channels.erase("c");
  auto a = history_.append("c", "new", 2);
  hub_.on_notify({a});
  ex_.run();
  hub_.more(2, "c", 1 << 20);
  ex_.run();
  for (const auto& s : {live, replaying}) {
    const auto resets = s->of_kind(frame::kind::reset);
    ASSERT_EQ(resets.size(), 1u);
    EXPECT_NE(resets[0]->text.find("epoch_changed"), std::string::npos);
    EXPECT_EQ(s->seqs(), iota(1, 1));
  }
}

// ---- failover: a standby promoted without the last commits (storage/timeline.hpp) ----

TEST(ResumeDecision, AnEpochLeftBehindResumesUpToWhatSurvived) {
  channel_state st;
  st.id = 7;
  st.epoch = "e2";
  st.first_seq = 1;
  st.head = 40;
  // e0 ended at 30 (a first failover), then e1 at 20 (a second one rewound further).
  st.past = {{"e0", 30}, {"e1", 20}};
  EXPECT_EQ(survived(st, "e0"), 20);
  EXPECT_EQ(survived(st, "e1"), 20);
  EXPECT_EQ(survived(st, "e2"), std::nullopt);
  EXPECT_EQ(survived(st, "other"), std::nullopt);
  auto d = decide_resume(st, 15, std::string("e0"));  // the same messages: no reset
  EXPECT_TRUE(d.reset.empty());
  EXPECT_EQ(d.after, 15);
  EXPECT_EQ(d.action, resume_decision::kind::replay);
  d = decide_resume(st, 20, std::string("e1"));
  EXPECT_TRUE(d.reset.empty());
  d = decide_resume(st, 25, std::string("e0"));  // beyond what survived
  EXPECT_EQ(d.reset, "rewound");
  EXPECT_EQ(d.reset_after, 20);
  EXPECT_EQ(d.after, 20);
  st.first_seq = 31;  // and what survived was trimmed since
  d = decide_resume(st, 25, std::string("e1"));
  EXPECT_EQ(d.reset, "rewound");
  EXPECT_EQ(d.reset_after, 20);
  EXPECT_EQ(d.after, 30);
  d = decide_resume(st, 10, std::string("e0"));  // at or below R, but trimmed
  EXPECT_EQ(d.reset, "truncated");
  d = decide_resume(st, 25, std::string("other"));
  EXPECT_EQ(d.reset, "epoch_changed");
}

class FailoverTest : public HubTest {
 protected:
  // Channel "c" with seqs 1..50 in epoch e1, `live` holding all of them live.
  void SetUp() override {
    for (int i = 1; i <= 50; ++i) history_.append("c", "\"old " + std::to_string(i) + "\"");
    live = subscriber();
    hub_.subscribe(1, live, "c", 0, std::string("e1"), 1 << 20);
    ex_.run();
    ASSERT_EQ(live->seqs(), iota(1, 50));
  }
  // The payload of every message frame `s` got, in order.
  static std::vector<std::string> texts(const fake_subscriber& s) {
    std::vector<std::string> out;
    for (const auto* f : s.of_kind(frame::kind::message)) out.push_back(f->text);
    return out;
  }
  std::shared_ptr<fake_subscriber> live;
};

TEST_F(FailoverTest, LiveSubscribersBeyondWhatSurvivedAreToldRewoundThenGetTheNewMessages) {
  history_.rewind("c", 20, "e1b");
  for (int i = 21; i <= 25; ++i) history_.append("c", "\"new " + std::to_string(i) + "\"");
  hub_.on_timeline_changed();
  ex_.run();
  hub_.more(1, "c", 1 << 20);  // a moved subscription replays within grants too
  ex_.run();
  const auto resets = live->of_kind(frame::kind::reset);
  ASSERT_EQ(resets.size(), 1u);
  EXPECT_NE(resets[0]->text.find(R"("reason":"rewound","rewound_to":20,"missed":null)"),
            std::string::npos)
      << resets[0]->text;
  EXPECT_NE(resets[0]->text.find(R"("epoch":"e1b","first_seq":21)"), std::string::npos)
      << resets[0]->text;
  EXPECT_EQ(resets[0]->reset_to, 20);
  EXPECT_EQ(live->of_kind(frame::kind::subscribed).size(), 1u);  // no second `subscribed`
  auto want = iota(1, 50);
  for (auto s : iota(21, 25)) want.push_back(s);
  EXPECT_EQ(live->seqs(), want);
  const auto got = texts(*live);
  EXPECT_NE(got[50].find(R"("epoch":"e1b","seq":21)"), std::string::npos) << got[50];
  EXPECT_NE(got[50].find("new 21"), std::string::npos) << got[50];
  EXPECT_EQ(hub_.counters().rewinds.load(), 1u);
  EXPECT_EQ(hub_.counters().rewound_messages.load(), 30u);
  // Live from there on, in the new epoch.
  publish("c", "\"new 26\"");
  EXPECT_EQ(live->seqs().back(), 26);
}

TEST_F(FailoverTest, PositionsAtOrBelowWhatSurvivedResumeWithoutAReset) {
  history_.rewind("c", 20, "e1b");
  for (int i = 21; i <= 25; ++i) history_.append("c", "\"new " + std::to_string(i) + "\"");
  hub_.on_timeline_changed();
  ex_.run();
  auto below = subscriber();
  auto at = subscriber();
  auto beyond = subscriber();
  hub_.subscribe(2, below, "c", 15, std::string("e1"), 1 << 20);
  hub_.subscribe(3, at, "c", 20, std::string("e1"), 1 << 20);
  hub_.subscribe(4, beyond, "c", 30, std::string("e1"), 1 << 20);
  ex_.run();
  EXPECT_TRUE(below->of_kind(frame::kind::reset).empty());
  EXPECT_EQ(below->seqs(), iota(16, 25));
  EXPECT_TRUE(at->of_kind(frame::kind::reset).empty());
  EXPECT_EQ(at->seqs(), iota(21, 25));
  ASSERT_EQ(beyond->of_kind(frame::kind::reset).size(), 1u);
  EXPECT_EQ(beyond->seqs(), iota(21, 25));
  for (const auto& t : texts(*beyond)) EXPECT_NE(t.find("new"), std::string::npos) << t;
}

TEST_F(FailoverTest, NothingLostMeansNoResetOnlyANewEpoch) {
  // A synchronous standby has every acknowledged message: R is the head.
  history_.rewind("c", 50, "e1b");
  hub_.on_timeline_changed();
  ex_.run();
  publish("c", "\"51\"");
  EXPECT_TRUE(live->of_kind(frame::kind::reset).empty());
  EXPECT_EQ(live->seqs(), iota(1, 51));
  EXPECT_NE(texts(*live).back().find(R"("epoch":"e1b","seq":51)"), std::string::npos);
  EXPECT_EQ(hub_.counters().rewinds.load(), 0u);
}

TEST_F(FailoverTest, ARebaseHeardFromAnotherNodeReloadsTheChannel) {
  // This node has not noticed the failover itself: another node's commit on the
  // new primary names the same row in another epoch.
  history_.rewind("c", 40, "e1b");
  auto a = history_.append("c", "\"new 41\"");
  hub_.on_notify({a});
  ex_.run();
  hub_.more(1, "c", 1 << 20);
  ex_.run();
  ASSERT_EQ(live->of_kind(frame::kind::reset).size(), 1u);
  auto want = iota(1, 50);
  want.push_back(41);
  EXPECT_EQ(live->seqs(), want);
}

TEST_F(FailoverTest, ReadsStartedBeforeTheChangeAreDropped) {
  auto late = subscriber();
  hub_.subscribe(2, late, "c", 0, std::string("e1"), 1 << 20);  // ring too small: reads the log
  // The failover lands while that read is queued; the read answers from the new primary.
  history_.rewind("c", 20, "e1b");
  for (int i = 21; i <= 25; ++i) history_.append("c", "\"new " + std::to_string(i) + "\"");
  hub_.on_timeline_changed();
  ex_.run();
  hub_.more(2, "c", 1 << 20);
  ex_.run();
  // Whatever it got is one consistent history: old 1..20, then new 21..25 of e1b.
  const auto got = texts(*late);
  ASSERT_EQ(late->seqs(), iota(1, 25));
  for (std::size_t i = 20; i < got.size(); ++i) {
    EXPECT_NE(got[i].find("new"), std::string::npos) << got[i];
    EXPECT_NE(got[i].find("e1b"), std::string::npos) << got[i];
  }
}

TEST_F(HubTest, APositionBeyondTheHeadIsCheckedThenToldRewound) {
  for (int i = 0; i < 10; ++i) history_.append("c", "1");
  auto live = subscriber();
  hub_.subscribe(1, live, "c", std::nullopt, std::nullopt, 0);  // the node tracks "c"
  ex_.run();
  // A client that claims seq 15 of this epoch: the database has 10 (a failover lost
  // the rest, with no timeline to say so). It must not wait for a 15 that will be
  // another message.
  auto beyond = subscriber();
  hub_.subscribe(2, beyond, "c", 15, std::string("e1"), 1 << 20);
  ex_.run();
  const auto resets = beyond->of_kind(frame::kind::reset);
  ASSERT_EQ(resets.size(), 1u);
  EXPECT_NE(resets[0]->text.find(R"("reason":"rewound","rewound_to":10)"), std::string::npos)
      << resets[0]->text;
  publish("c", "11");
  EXPECT_EQ(beyond->seqs(), iota(11, 11));
  EXPECT_TRUE(live->of_kind(frame::kind::reset).empty());
}

TEST_F(HubTest, APositionAnotherNodeAlreadyDeliveredIsNoReset) {
  for (int i = 0; i < 10; ++i) history_.append("c", "1");
  auto live = subscriber();
  hub_.subscribe(1, live, "c", std::nullopt, std::nullopt, 0);
  ex_.run();
  // Seq 11 is committed and was delivered by another node; its NOTIFY has not
  // reached this one yet when a client that saw it arrives.
  history_.append("c", "11");
  auto moved = subscriber();
  hub_.subscribe(2, moved, "c", 11, std::string("e1"), 1 << 20);
  ex_.run();
  EXPECT_TRUE(moved->of_kind(frame::kind::reset).empty());
  publish("c", "12");
  // (Joining live at 10, it may be handed 11 too: the connection drops seqs at or
  // below its position.)
  EXPECT_EQ(moved->seqs().back(), 12);
  EXPECT_EQ(live->seqs(), iota(11, 12));
}

TEST_F(FailoverTest, AHeadBelowWhatWasDeliveredInTheSameEpochIsARewindToo) {
  // A database whose timeline cannot be read came back without 21..50: the same
  // epoch, a lower head, found when the listener returns.
  auto& c = history_.channels.at("c");
  c.rows.erase(c.rows.upper_bound(20), c.rows.end());
  c.info.last_seq = 20;
  hub_.on_listener_connected();
  ex_.run();
  ASSERT_EQ(live->of_kind(frame::kind::reset).size(), 1u);
  EXPECT_NE(live->of_kind(frame::kind::reset)[0]->text.find(R"("rewound_to":20)"),
            std::string::npos);
  publish("c", "\"new 21\"");
  EXPECT_EQ(live->seqs().back(), 21);
  EXPECT_EQ(hub_.counters().rewound_messages.load(), 30u);
}

}  // namespace
}  // namespace seqcast::hub
