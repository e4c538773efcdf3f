package collect

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the scheduler's self-metrics. A nil *Metrics records nothing.
type Metrics struct {
	success, failure prometheus.Counter
	duration         *prometheus.HistogramVec
	errors           *prometheus.CounterVec
	jobs             *prometheus.GaugeVec
	age              *prometheus.Desc
	ages             func() map[string]time.Duration
}

// NewMetrics registers the scheduler's metrics with reg. The two unlabelled counters
// keep the original's names, so existing dashboards keep working.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		success: prometheus.NewCounter(prometheus.CounterOpts{Name: "kube_metrics_adapter_collections_success",
			Help: "Collections that returned no error."}),
		failure: prometheus.NewCounter(prometheus.CounterOpts{Name: "kube_metrics_adapter_collections_error",
			Help: "Collections that returned an error (partial results included)."}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kube_metrics_adapter_collection_duration_seconds",
			Help:    "How long one collection took, by collector type.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"collector"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kube_metrics_adapter_collection_errors_total",
			Help: "Collections that returned an error, by collector type."}, []string{"collector"}),
		jobs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kube_metrics_adapter_collectors",
			Help: "Running collectors (one per HPA metric), by collector type."}, []string{"collector"}),
		age: prometheus.NewDesc("kube_metrics_adapter_value_age_seconds",
			"The longest time since a running collector of this type last stored values.", []string{"collector"}, nil),
	}
	reg.MustRegister(m.success, m.failure, m.duration, m.errors, m.jobs, m)
	return m
}

// Describe implements prometheus.Collector for the value ages.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.age }

// Collect implements prometheus.Collector for the value ages.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	if m.ages == nil {
		return
	}
	for typ, age := range m.ages() {
		ch <- prometheus.MustNewConstMetric(m.age, prometheus.GaugeValue, age.Seconds(), typ)
	}
}

func (m *Metrics) observe(typ string, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(typ).Observe(took.Seconds())
	if err != nil {
		m.failure.Inc()
		m.errors.WithLabelValues(typ).Inc()
		return
	}
	m.success.Inc()
}

func (m *Metrics) jobStarted(typ string) {
	if m != nil {
		m.jobs.WithLabelValues(typ).Inc()
	}
}

func (m *Metrics) jobStopped(typ string) {
	if m != nil {
		m.jobs.WithLabelValues(typ).Dec()
	}
}
