// Nothing lost, nothing duplicated: the recorder against a PostgreSQL that goes away,
// and a recorder SIGKILLed during replay (label `host`; a real PostgreSQL 15, a child process).
#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "core/clock.h"
#include "store/pg_server.h"
#include "support/temp_dir.h"

namespace fstrail::store {
namespace {

using fixtures::PgServer;

constexpr long long kEvents = 100000;

pid_t spawn_feeder(const std::vector<std::string>& args, const std::string& out) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    std::string bin = FSTRAIL_FEEDER_PATH;
    argv.push_back(bin.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    if (!freopen(out.c_str(), "w", stdout)) _exit(126);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid, int timeout_s) {
  for (int i = 0; i < timeout_s * 10; ++i) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

// count(*), count(distinct id), min(id), max(id) of the feeder's rows; -1s when unreachable.
std::array<long long, 4> tally(const std::string& conninfo) {
  std::array<long long, 4> out{-1, -1, -1, -1};
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) == CONNECTION_OK) {
    PGresult* r = PQexec(c, "SELECT count(*), count(DISTINCT event_id), coalesce(min(event_id), -1), "
                            "coalesce(max(event_id), -1) FROM fstrail_events WHERE host = 'feeder'");
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
      for (int i = 0; i < 4; ++i) out[static_cast<size_t>(i)] = std::atoll(PQgetvalue(r, 0, i));
    PQclear(r);
  }
  PQfinish(c);
  return out;
}

std::string slurp(const std::string& path) {
  std::string s;
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
    std::fclose(f);
  }
  return s;
}

class StoreFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err = server_.start();
    ASSERT_EQ(err, "") << "cannot start PostgreSQL: " << err;
    conninfo_ = server_.conninfo();
    base_ns_ = std::to_string(realtime_now_ns());
  }
  std::vector<std::string> args(long long count, const std::string& extra_batch = "10000",
                                const std::string& wait_s = "300") {
    return {"--db",    conninfo_,  "--spool", dir_ + "/spool", "--count", std::to_string(count), "--base-ns",
            base_ns_, "--batch", extra_batch, "--wait-s", wait_s};
  }
  void expect_exactly_once() {
    auto t = tally(conninfo_);
    EXPECT_EQ(t[0], kEvents) << "rows";
    EXPECT_EQ(t[1], kEvents) << "distinct event ids";
    EXPECT_EQ(t[2], 0);
    EXPECT_EQ(t[3], kEvents - 1);
  }

  PgServer server_;
  testing::TempDir tmp_{"fault"};
  const std::string dir_ = tmp_.path();
  std::string conninfo_, base_ns_;
};

TEST_F(StoreFaultTest, PostgresStoppedMidBurstForThirtySecondsLosesAndDuplicatesNothing) {
  auto a = args(kEvents);
  a.insert(a.end(), {"--rate", "10000"});  // a 10 s burst
  pid_t feeder = spawn_feeder(a, dir_ + "/feeder.out");
  for (int i = 0; i < 200 && tally(conninfo_)[0] < 20000; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  long long before = tally(conninfo_)[0];
  ASSERT_GT(before, 0);
  ASSERT_LT(before, kEvents) << "the burst ended before PostgreSQL was stopped";
  ASSERT_TRUE(server_.stop("fast"));
  std::this_thread::sleep_for(std::chrono::seconds(30));
  ASSERT_EQ(server_.start_again(), "");
  ASSERT_EQ(wait_exit(feeder, 300), 0) << slurp(dir_ + "/feeder.out");
  std::string out = slurp(dir_ + "/feeder.out");
  EXPECT_EQ(out.find("spooled=0 "), std::string::npos) << "nothing went through the spool: " << out;
  EXPECT_NE(out.find("overflow=0 "), std::string::npos) << out;
  expect_exactly_once();
}

TEST_F(StoreFaultTest, SigkillDuringReplayThenRestartStoresEverythingExactlyOnce) {
  // The database is down for the whole burst: everything goes to the spool.
  ASSERT_TRUE(server_.stop("immediate"));
  ASSERT_EQ(wait_exit(spawn_feeder(args(kEvents, "10000", "0"), dir_ + "/burst.out"), 120), 0);
  ASSERT_NE(slurp(dir_ + "/burst.out").find("spooled=100000 "), std::string::npos) << slurp(dir_ + "/burst.out");
  ASSERT_EQ(server_.start_again(), "");
  // Replay in small batches and SIGKILL once part of it has landed.
  pid_t replayer = spawn_feeder(args(0, "500"), dir_ + "/replay1.out");
  long long landed = 0;
  for (int i = 0; i < 20000 && landed < 1; ++i) {
    landed = tally(conninfo_)[0];
    if (landed < 1) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  kill(replayer, SIGKILL);
  waitpid(replayer, nullptr, 0);
  landed = tally(conninfo_)[0];
  ASSERT_GT(landed, 0);
  ASSERT_LT(landed, kEvents) << "the replay finished before the SIGKILL";
  // Restart: the replay resumes from the durable cursor; repeated rows are skipped.
  ASSERT_EQ(wait_exit(spawn_feeder(args(0), dir_ + "/replay2.out"), 300), 0) << slurp(dir_ + "/replay2.out");
  expect_exactly_once();
  EXPECT_NE(slurp(dir_ + "/replay2.out").find("overflow=0 "), std::string::npos);
}

TEST_F(StoreFaultTest, SigtermFlushesTheQueueToTheDatabase) {
  auto a = args(kEvents, "10000", "300");
  pid_t feeder = spawn_feeder(a, dir_ + "/feeder.out");
  ASSERT_EQ(wait_exit(feeder, 300), 0);
  expect_exactly_once();
  // SIGTERM in the middle of a burst: what was submitted is stored or spooled, none twice.
  std::filesystem::remove_all(dir_ + "/spool");
  a = args(kEvents);
  a.insert(a.end(), {"--rate", "20000"});
  a[7] = std::to_string(realtime_now_ns());  // --base-ns: a new run
  feeder = spawn_feeder(a, dir_ + "/term.out");
  std::this_thread::sleep_for(std::chrono::seconds(2));
  kill(feeder, SIGTERM);
  ASSERT_EQ(wait_exit(feeder, 120), 0);
  std::string out = slurp(dir_ + "/term.out");
  PGconn* c = PQconnectdb(conninfo_.c_str());
  PGresult* r = PQexec(c, "SELECT count(*), count(DISTINCT (host, event_id, time)) FROM fstrail_events");
  long long rows = std::atoll(PQgetvalue(r, 0, 0)), distinct = std::atoll(PQgetvalue(r, 0, 1));
  PQclear(r);
  PQfinish(c);
  EXPECT_EQ(rows, distinct);
  long long stored = 0;
  std::sscanf(out.c_str(), "stored=%lld", &stored);
  EXPECT_GT(stored, 0);
  EXPECT_EQ(rows, kEvents + stored) << out;
}

}  // namespace
}  // namespace fstrail::store
