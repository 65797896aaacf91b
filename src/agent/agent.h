// `fstrail agent`: one long-running process that records every [[watch]] and guarded tree
// into the store, runs the guards and keeps their alerts (log and database). SIGHUP
// re-reads the configuration between two polls of the backend: roots are added and removed
// in the running backend (Backend::update_roots) and the routes and guard rules swapped, so
// trees that stay lose and repeat nothing; a bad file keeps the configuration in use.
// SIGTERM ends the loop after the kernel's queue is drained; finish() stores or spools all.
#pragma once

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "agent/alert_log.h"
#include "agent/config.h"
#include "agent/router.h"
#include "backend/backend.h"
#include "guard/engine.h"
#include "metrics/snapshot.h"
#include "pipeline/pipeline.h"
#include "store/alert_store.h"
#include "store/recorder.h"

namespace fstrail::agent {

// Where the agent writes its lines: "journal" and "stderr" are stderr (under systemd the
// journal takes a service's stderr), anything else a file opened for appending.
Result<FILE*> open_log(const std::string& log);

class Agent {
 public:
  // Opens the log, the store (and spool) and the alert store, starts the backend, scans the
  // guarded trees. `config_path` is read again at each reload.
  static Result<std::unique_ptr<Agent>> start(AgentConfig config, std::string config_path);
  ~Agent();

  // Polls until `stop`; when `reload` is set (SIGHUP), clears it and re-reads the file.
  Status run(const std::atomic<bool>& stop, std::atomic<bool>& reload);
  // Re-reads the configuration file now (on the thread that runs the loop). Errors keep the old.
  Status reload();
  // The last guard summaries and alerts, everything stored or spooled, the stop summary.
  void finish();

  // The numbers /metrics shows; thread-safe (published by the event thread every ~100 ms
  // and at reloads and finish, plus the recorder's and alert log's own live counters).
  metrics::Snapshot snapshot() const;

  const AgentConfig& config() const { return config_; }
  Backend& backend() { return *backend_; }
  FILE* log() const { return log_; }

 private:
  Agent() = default;
  Status open_outputs();
  Status start_backend();
  void start_guard(const AgentConfig& config);
  void retire_guard();
  Status between_polls(std::atomic<bool>& reload);
  void publish();

  AgentConfig config_;
  std::string config_path_;
  FILE* log_ = stderr;
  bool own_log_ = false;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<store::Recorder> recorder_;
  std::unique_ptr<store::AlertStore> alert_store_;
  std::unique_ptr<AlertLog> alert_log_;
  std::unique_ptr<guard::Policy> policy_;
  std::unique_ptr<guard::Remediator> remediator_;
  std::unique_ptr<guard::GuardEngine> engine_;
  guard::EngineCounts retired_counts_;  // the engines replaced by reloads, summed
  Router* router_ = nullptr;            // owned by pipeline_
  std::unique_ptr<Pipeline> pipeline_;
  int64_t next_publish_ns_ = 0;
  int64_t next_alert_retention_ns_ = 0;
  bool finished_ = false;

  mutable std::mutex published_mutex_;
  metrics::Snapshot published_;
  uint64_t reloads_ = 0, reload_failures_ = 0;
};

}  // namespace fstrail::agent
