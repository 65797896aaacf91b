// The Prometheus text exposition (format 0.0.4) of a Snapshot: what GET /metrics answers.
// Every metric's name, type, labels and meaning are in docs/metrics.md.
#pragma once

#include <string>

#include "metrics/snapshot.h"

namespace fstrail::metrics {

// Content-Type of render()'s output.
inline constexpr const char* kExpositionContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string render(const Snapshot& snapshot);

}  // namespace fstrail::metrics
