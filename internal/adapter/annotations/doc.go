// Package annotations turns a HorizontalPodAutoscaler's metric-config annotations and
// its autoscaling/v2 metric specs into one MetricConfig per metric the adapter collects.
//
// # Grammar
//
// Only annotations whose key starts with "metric-config." are read:
//
//	metric-config.<metricType>.<metricName>.<collectorType>/<configKey>: <value>
//
// where:
//   - metricType is "pods", "object" or "external" (the HPA metric types Pods, Object and
//     External). Any other word is reported; the original treated every unknown word,
//     typos included, as external.
//   - metricName is everything between the first and the last dot, so it may contain
//     dots ("metric-config.external.queue.depth.prometheus/query" names the metric
//     "queue.depth"). Keys the original understood (exactly four dot-separated parts)
//     mean the same here; the original silently ignored names with dots.
//   - collectorType is the last dot-separated part, e.g. "json-path", "prometheus",
//     "influxdb", "zmon". The parser does not judge it; the collector registry does.
//     All annotations of one metric must name the same collectorType (the original
//     picked one at random).
//   - configKey is a collector option (e.g. "json-key", "query", "endpoint"); it lands
//     in MetricConfig.Config. Three keys are generic and typed instead:
//     "interval" (a Go duration > 0, the metric's collection interval),
//     "per-replica" (a boolean, Object metrics only: "false" now means false) and
//     "min-pod-ready-age" (a Go duration >= 0, Pods metrics only). On other metric
//     types these two are reported as ignored while the metric is still collected, as
//     the original silently ignored them.
//
// An annotation applies to the spec.metrics entries of the same type and name; one that
// matches no entry is reported.
//
// # Metric selectors
//
// Each Pods, Object and External metric's selector is kept whole (matchLabels and
// matchExpressions) as MetricConfig.Selector. For Object and External metrics its
// matchLabels are also collector options: they are copied into Config first and an
// annotation with the same configKey wins (needed for values a label cannot hold, such
// as ZMON's "*" patterns).
//
// An External metric's collector is, in order: the "type" label of its selector; the
// collector a legacy metric name stands for ("prometheus-query", "http", "flux-query",
// "zmon-check", "sqs-queue-length"); its annotations' collectorType; otherwise the metric
// name itself (the original's lookup, so the registry can say it has no such collector).
// An annotation collectorType that disagrees with the type label or legacy name is
// reported.
//
// # Legacy query-name
//
// For External "prometheus" and "influxdb" metrics with no "query" option, a "query-name"
// option (label or annotation) names the option holding the query, as in the legacy
// metric "prometheus-query" with label "query-name: X" and annotation
// "metric-config.external.prometheus-query.prometheus/X". The parser copies that query to
// Config["query"], so collectors read one key.
//
// # Errors
//
// Resource and ContainerResource metrics are not the adapter's and are skipped. Every
// problem found is returned at once as Problems, each naming the annotation key and value
// or the spec field; a metric with a problem yields no MetricConfig, while the HPA's other
// metrics still do. Output and problems are sorted, so the same input always gives the
// same result and an unchanged HPA produces an unchanged message.
package annotations
