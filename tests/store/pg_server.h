// A private PostgreSQL 15 server for tests and benchmarks: initdb in a temporary directory
// as the `postgres` system user (initdb refuses root), a unix socket in that directory,
// no TCP. Missing binaries are an error with the reason, never a skip.
#pragma once

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace fstrail::store::fixtures {

inline constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";

class PgServer {
 public:
  // `settings`: extra "-c name=value" options for the server.
  explicit PgServer(std::string settings = "") : settings_(std::move(settings)) {}
  ~PgServer() {
    if (started_) run(fmt::format("runuser -u postgres -- {}/pg_ctl -D {}/data -m immediate -w stop", kPgBin, dir_), true);
    if (!dir_.empty() && !std::getenv("FSTRAIL_KEEP_PG")) std::filesystem::remove_all(dir_);
  }

  // Returns "" on success, else what went wrong and how to fix it.
  std::string start() {
    if (::access((std::string(kPgBin) + "/initdb").c_str(), X_OK) != 0)
      return fmt::format("{}/initdb not found: install postgresql-15 (scripts/install-deps.sh)", kPgBin);
    if (::geteuid() != 0) return "the PostgreSQL tests run initdb as the postgres user: run them as root";
    if (::system("id postgres >/dev/null 2>&1") != 0) return "no `postgres` system user: install postgresql-15";
    char tmpl[] = "/tmp/fstrail-pg-XXXXXX";
    if (!mkdtemp(tmpl)) return "mkdtemp failed";
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);
    port_ = 20000 + static_cast<int>(::getpid() % 20000);
    if (run(fmt::format("chown postgres: {0} && runuser -u postgres -- {1}/initdb -D {0}/data -A trust -U postgres "
                        "-E UTF8 --locale=C --no-sync >{0}/initdb.log 2>&1",
                        dir_, kPgBin)) != 0)
      return fmt::format("initdb failed: see {}/initdb.log", dir_);
    return start_again();
  }

  std::string start_again() {
    if (run(fmt::format("runuser -u postgres -- {0}/pg_ctl -D {1}/data -l {1}/server.log -w -t 60 -o "
                        "\"-p {2} -k {1} -c listen_addresses='' -c max_wal_size=4GB {3}\" start >/dev/null",
                        kPgBin, dir_, port_, settings_)) != 0)
      return fmt::format("pg_ctl start failed: see {}/server.log", dir_);
    started_ = true;
    return "";
  }

  // mode: fast (clean), immediate (like a crash).
  bool stop(const char* mode = "fast") {
    started_ = false;
    return run(fmt::format("runuser -u postgres -- {}/pg_ctl -D {}/data -m {} -w stop >/dev/null", kPgBin, dir_,
                           mode)) == 0;
  }

  std::string conninfo() const { return fmt::format("host={} port={} dbname=postgres user=postgres", dir_, port_); }
  std::string url() const { return fmt::format("postgresql://postgres@/postgres?host={}&port={}", dir_, port_); }
  // A fresh database per test.
  std::string create_database(const std::string& name) {
    run(fmt::format("{}/psql -q -h {} -p {} -U postgres -d postgres -c 'CREATE DATABASE {}' >/dev/null", kPgBin, dir_,
                    port_, name));
    return fmt::format("host={} port={} dbname={} user=postgres", dir_, port_, name);
  }
  // One value from psql (-At).
  std::string psql(const std::string& conninfo, const std::string& sql) const {
    std::string cmd = fmt::format("{}/psql -At \"{}\" -c \"{}\" 2>&1", kPgBin, conninfo, sql);
    std::string out;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
      ::pclose(p);
    }
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
  const std::string& dir() const { return dir_; }

 private:
  static int run(const std::string& cmd, bool quiet = false) {
    int rc = ::system((quiet ? cmd + " >/dev/null 2>&1" : cmd).c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }

  std::string settings_;
  std::string dir_;
  int port_ = 0;
  bool started_ = false;
};

// One server for a whole test binary (::testing::AddGlobalTestEnvironment(new PgEnvironment));
// its tests reach it through g_server, null when it did not start.
inline PgServer* g_server = nullptr;

class PgEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    server_ = std::make_unique<PgServer>("-c fsync=off");
    std::string err = server_->start();
    ASSERT_EQ(err, "") << "cannot start PostgreSQL: " << err;
    g_server = server_.get();
  }
  void TearDown() override {
    g_server = nullptr;
    server_.reset();
  }

 private:
  std::unique_ptr<PgServer> server_;
};

}  // namespace fstrail::store::fixtures
