// Sinks: where filtered events go (a terminal, a JSON-lines stream, later a database).
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "core/event.h"

namespace fstrail {

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void write(const Event& event) = 0;
  // Called after each batch of events: make what was written visible.
  virtual void flush() = 0;
};

// One JSON object per line, the contract of docs/events.md.
std::string event_to_json(const Event& event);
// The same, appended to `out` (no allocation when `out` has room).
void append_event_json(std::string& out, const Event& event);

// Lines are gathered in memory and written with one write() per flush (per batch of
// events), or whenever kMaxPending bytes are waiting.
class JsonLinesSink final : public Sink {
 public:
  explicit JsonLinesSink(FILE* out) : out_(out) {}
  ~JsonLinesSink() override { flush(); }
  void write(const Event& event) override;
  void flush() override;
  static constexpr size_t kMaxPending = 1 << 20;

 private:
  FILE* out_;
  std::unique_ptr<char[]> pending_;  // whole lines, each written in place (no zero-fill)
  size_t pending_size_ = 0;
  size_t pending_capacity_ = 0;
};

// An aligned, readable line per event; colored when `color` (a terminal).
std::unique_ptr<Sink> make_text_sink(FILE* out, bool color);

}  // namespace fstrail
