#include "metrics/render.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <string_view>
#include <utility>
#include <vector>

#include "core/text.h"

#ifndef FSTRAIL_VERSION
#error "FSTRAIL_VERSION must be defined by the build (project version in CMakeLists.txt)"
#endif

namespace fstrail::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// prometheus-cpp escapes label values (\\, \", \n) but the format also wants them UTF-8;
// label values that are not (a rule path with a stray byte) are shown as \xNN instead.
std::string label_value(std::string_view bytes) {
  return is_valid_utf8(bytes) ? std::string(bytes) : escape_for_terminal(bytes);
}

// HELP texts are constants: prometheus-cpp 1.0.1 does not escape \ and newline in them.
MetricFamily family(std::string name, std::string help, MetricType type) {
  return MetricFamily{std::move(name), std::move(help), type, {}};
}

ClientMetric sample(MetricType type, double value, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (type == MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
  return m;
}

MetricFamily single(std::string name, std::string help, MetricType type, double value) {
  MetricFamily f = family(std::move(name), std::move(help), type);
  f.metric.push_back(sample(type, value));
  return f;
}

}  // namespace

std::string render(const Snapshot& s) {
  std::vector<MetricFamily> out;
  const std::string backend = label_value(s.backend);

  MetricFamily build =
      family("fstrail_build_info", "fstrail's version; the value is always 1.", MetricType::Gauge);
  build.metric.push_back(sample(MetricType::Gauge, 1, {{"version", FSTRAIL_VERSION}}));
  out.push_back(std::move(build));

  out.push_back(single("fstrail_process_start_time_seconds", "Unix time the agent started, in seconds.",
                       MetricType::Gauge, s.start_time_seconds));

  MetricFamily events =
      family("fstrail_events_total", "Events delivered to the sinks and the store, by kind and backend.",
             MetricType::Counter);
  for (int i = static_cast<int>(EventKind::kCreate); i < kEventKindCount; ++i)
    events.metric.push_back(
        sample(MetricType::Counter, static_cast<double>(s.events_by_kind[i]),
               {{"backend", backend}, {"kind", std::string(kind_name(static_cast<EventKind>(i)))}}));
  out.push_back(std::move(events));

  MetricFamily lost = family("fstrail_events_lost_total",
                             "Events lost, by reason (every reason, 0 included).", MetricType::Counter);
  for (int i = 0; i < kLossReasonCount; ++i) {
    auto reason = static_cast<LossReason>(i);
    lost.metric.push_back(sample(MetricType::Counter, static_cast<double>(s.lost[reason]),
                                 {{"reason", std::string(loss_reason_name(reason))}}));
  }
  out.push_back(std::move(lost));

  // Unknown is absent, never a made-up 0.
  if (s.queue_fill_ratio) {
    MetricFamily fill =
        family("fstrail_queue_fill_ratio",
               "Fill of the kernel queue or ring buffer the backend reads, 0 to 1.", MetricType::Gauge);
    fill.metric.push_back(sample(MetricType::Gauge, *s.queue_fill_ratio, {{"backend", backend}}));
    out.push_back(std::move(fill));
  }

  out.push_back(single("fstrail_spool_bytes", "Bytes of events spooled on disk, waiting for the store.",
                       MetricType::Gauge, static_cast<double>(s.spool_bytes)));
  if (s.spool_oldest_age_seconds)
    out.push_back(single("fstrail_spool_oldest_event_age_seconds",
                         "Age of the oldest spooled event, in seconds.", MetricType::Gauge,
                         *s.spool_oldest_age_seconds));

  out.push_back(single("fstrail_store_rows_total", "Rows written to the store since the agent started.",
                       MetricType::Counter, static_cast<double>(s.rows_stored)));
  out.push_back(single("fstrail_store_lag_seconds",
                       "Now minus the time of the newest event stored, in seconds.", MetricType::Gauge,
                       s.store_lag_seconds));

  MetricFamily alerts =
      family("fstrail_alerts_total", "Guard alerts, by rule and type.", MetricType::Counter);
  for (const auto& [key, count] : s.alerts)
    alerts.metric.push_back(sample(MetricType::Counter, static_cast<double>(count),
                                   {{"rule", label_value(key.first)}, {"type", label_value(key.second)}}));
  out.push_back(std::move(alerts));

  MetricFamily remediations =
      family("fstrail_remediations_total", "Guard remediations, by result.", MetricType::Counter);
  for (const auto& [result, count] : s.remediations)
    remediations.metric.push_back(
        sample(MetricType::Counter, static_cast<double>(count), {{"result", label_value(result)}}));
  out.push_back(std::move(remediations));

  out.push_back(single("fstrail_config_reloads_total", "Configuration reloads (SIGHUP) applied.",
                       MetricType::Counter, static_cast<double>(s.config_reloads)));
  out.push_back(single("fstrail_config_reload_failures_total",
                       "Configuration reloads (SIGHUP) rejected; the previous configuration stays.",
                       MetricType::Counter, static_cast<double>(s.config_reload_failures)));

  return prometheus::TextSerializer().Serialize(out);
}

}  // namespace fstrail::metrics
