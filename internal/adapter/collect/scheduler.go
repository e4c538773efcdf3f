// Package collect runs the adapter's collectors: each metric of each HPA on its own
// interval, a bounded number at a time, each collection bounded in time, results into the
// metric store and failures to a Reporter, a log and the self-metrics.
//
// A failed collection stores nothing: the metric's last values stay until the store's
// TTL and are then no longer served, so the HPA reports the metric unavailable rather
// than scaling on an old value. A partial result (values and an error, e.g. some pods did
// not answer) stores what was collected and still reports the error.
package collect

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/custompodautoscaler/cpa/internal/adapter/annotations"
	"github.com/custompodautoscaler/cpa/internal/adapter/store"
	"github.com/custompodautoscaler/cpa/internal/clip"
	"github.com/custompodautoscaler/cpa/internal/collector"
)

// Store receives the results.
type Store interface {
	Set(owner store.Owner, key annotations.MetricKey, labels map[string]string, values []collector.Value) error
	DeleteMetric(owner store.Owner, key annotations.MetricKey)
}

// Reporter is told when a metric's collection starts failing or its error changes, and
// when it recovers; it turns that into events. Calls come from many goroutines.
type Reporter interface {
	CollectionFailed(owner store.Owner, key annotations.MetricKey, err error)
	CollectionRecovered(owner store.Owner, key annotations.MetricKey)
}

// Job is one metric of one HPA to collect.
type Job struct {
	Key annotations.MetricKey
	// Labels are the metric selector's matchLabels, stored with the values.
	Labels map[string]string
	// Type is the collector type, for logs and self-metrics.
	Type      string
	Interval  time.Duration
	Collector collector.Collector
}

// Options configure a Scheduler.
type Options struct {
	// MaxConcurrent bounds the collections running at once (default 32).
	MaxConcurrent int
	// MaxTimeout bounds one collection; a collection also never outlives its interval
	// (default 1m).
	MaxTimeout time.Duration
	Clock      clock.WithTicker
	Log        *slog.Logger
	Reporter   Reporter
	Metrics    *Metrics
}

// Scheduler runs jobs until they are stopped. Build it with New.
type Scheduler struct {
	store Store
	opts  Options
	sem   chan struct{}

	mu   sync.Mutex
	ctx  context.Context
	jobs map[store.Owner]map[annotations.MetricKey]*running
}

type running struct {
	job    Job
	cancel context.CancelFunc
	done   chan struct{}

	mu sync.Mutex
	// lastErr is the error last reported ("" while healthy).
	lastErr string
	// lastOK is when a collection last stored values (zero: never).
	lastOK time.Time
}

// New returns a scheduler writing into st. Jobs start running once Run is called.
func New(st Store, opts Options) *Scheduler {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 32
	}
	if opts.MaxTimeout <= 0 {
		opts.MaxTimeout = time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{store: st, opts: opts, sem: make(chan struct{}, opts.MaxConcurrent),
		jobs: map[store.Owner]map[annotations.MetricKey]*running{}}
	if opts.Metrics != nil {
		opts.Metrics.ages = s.ages
	}
	return s
}

// Run starts the jobs added so far and those added later, and stops them all when ctx
// is done; it returns once every job has stopped.
func (s *Scheduler) Run(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	for owner, byKey := range s.jobs {
		for _, r := range byKey {
			s.startLocked(owner, r)
		}
	}
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	var all []*running
	for _, byKey := range s.jobs {
		for _, r := range byKey {
			all = append(all, r)
		}
	}
	s.mu.Unlock()
	for _, r := range all {
		if r.done != nil {
			<-r.done
		}
	}
}

// Start runs job for owner. A job with the same key is stopped and its values removed
// first, so nothing the old configuration collected is served as the new one's.
func (s *Scheduler) Start(owner store.Owner, job Job) {
	if job.Interval <= 0 {
		job.Interval = time.Minute
	}
	job.Labels = maps.Clone(job.Labels)
	s.Stop(owner, job.Key)
	s.mu.Lock()
	defer s.mu.Unlock()
	byKey := s.jobs[owner]
	if byKey == nil {
		byKey = map[annotations.MetricKey]*running{}
		s.jobs[owner] = byKey
	}
	r := &running{job: job}
	byKey[job.Key] = r
	if s.ctx != nil {
		s.startLocked(owner, r)
	}
	s.opts.Metrics.jobStarted(job.Type)
}

// Stop stops owner's job key and removes its values from the store.
func (s *Scheduler) Stop(owner store.Owner, key annotations.MetricKey) {
	s.mu.Lock()
	r := s.jobs[owner][key]
	if r != nil {
		delete(s.jobs[owner], key)
		if len(s.jobs[owner]) == 0 {
			delete(s.jobs, owner)
		}
		s.stopLocked(r)
		s.opts.Metrics.jobStopped(r.job.Type)
	}
	s.mu.Unlock()
	if r != nil && r.done != nil {
		<-r.done // no collection of this job may Set after the delete below
	}
	if c, ok := r.collectorCloser(); ok {
		_ = c.Close() // e.g. the pod collector's kept-alive connections
	}
	s.store.DeleteMetric(owner, key)
}

// StopAll stops every job of owner and removes their values.
func (s *Scheduler) StopAll(owner store.Owner) {
	for _, k := range s.Keys(owner) {
		s.Stop(owner, k)
	}
}

// Keys lists owner's running jobs.
func (s *Scheduler) Keys(owner store.Owner) []annotations.MetricKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]annotations.MetricKey, 0, len(s.jobs[owner]))
	for k := range s.jobs[owner] {
		out = append(out, k)
	}
	return out
}

// Len counts the jobs.
func (s *Scheduler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, byKey := range s.jobs {
		n += len(byKey)
	}
	return n
}

// collectorCloser returns r's collector when it holds resources to release.
func (r *running) collectorCloser() (io.Closer, bool) {
	if r == nil {
		return nil, false
	}
	c, ok := r.job.Collector.(io.Closer)
	return c, ok
}

func (s *Scheduler) startLocked(owner store.Owner, r *running) {
	ctx, cancel := context.WithCancel(s.ctx)
	r.cancel, r.done = cancel, make(chan struct{})
	go s.loop(ctx, owner, r)
}

func (s *Scheduler) stopLocked(r *running) {
	if r.cancel != nil {
		r.cancel()
	}
}

func (s *Scheduler) loop(ctx context.Context, owner store.Owner, r *running) {
	defer close(r.done)
	for {
		// Collections start every interval, not an interval after the last one ended:
		// otherwise the collection time (and any wait for a slot) would add up, and a
		// source would be asked a little less often than the interval says.
		start := s.opts.Clock.Now()
		s.collect(ctx, owner, r)
		t := s.opts.Clock.NewTimer(max(r.job.Interval-s.opts.Clock.Since(start), 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// collect runs one collection of r.
func (s *Scheduler) collect(ctx context.Context, owner store.Owner, r *running) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-s.sem }()
	timeout := min(r.job.Interval, s.opts.MaxTimeout)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	start := s.opts.Clock.Now()
	values, err := collectSafely(cctx, r.job.Collector)
	took := s.opts.Clock.Since(start)
	if ctx.Err() != nil {
		return // stopped: the job's values are being deleted, do not store or report
	}
	if err != nil && cctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("collection did not finish within %s: %w", timeout, err)
	}
	if len(values) > 0 {
		if serr := s.store.Set(owner, r.job.Key, r.job.Labels, values); serr != nil {
			err = joinErr(err, serr)
		}
	}
	s.opts.Metrics.observe(r.job.Type, took, err)
	log := s.opts.Log.With("hpa", owner.String(), "metric", r.job.Key.String(), "collector", r.job.Type)
	if err != nil {
		err = fmt.Errorf("collecting %s (%s): %w", r.job.Key, r.job.Type, err)
		log.Warn("collection failed", "values", len(values), "took", took, "err", clip.String(err.Error(), 2000))
	} else {
		log.Debug("collected", "values", len(values), "took", took)
	}
	s.record(owner, r, len(values) > 0, err)
}

// record updates r's health and tells the Reporter about changes.
func (s *Scheduler) record(owner store.Owner, r *running, stored bool, err error) {
	r.mu.Lock()
	if stored {
		r.lastOK = s.opts.Clock.Now()
	}
	prev := r.lastErr
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	r.lastErr = msg
	r.mu.Unlock()
	if s.opts.Reporter == nil || msg == prev {
		return
	}
	if err != nil {
		s.opts.Reporter.CollectionFailed(owner, r.job.Key, err)
	} else {
		s.opts.Reporter.CollectionRecovered(owner, r.job.Key)
	}
}

// ages returns, per collector type, the longest time since a running job last stored
// values (jobs that never did are left out: they have no value to age).
func (s *Scheduler) ages() map[string]time.Duration {
	now := s.opts.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]time.Duration{}
	for _, byKey := range s.jobs {
		for _, r := range byKey {
			r.mu.Lock()
			ok := r.lastOK
			r.mu.Unlock()
			if ok.IsZero() {
				continue
			}
			if age := now.Sub(ok); age > out[r.job.Type] {
				out[r.job.Type] = age
			}
		}
	}
	return out
}

// collectSafely turns a collector's panic into an error: collectors parse untrusted
// input, and one bad source must not stop the adapter.
func collectSafely(ctx context.Context, c collector.Collector) (values []collector.Value, err error) {
	defer func() {
		if p := recover(); p != nil {
			values, err = nil, fmt.Errorf("collector panicked: %v", p)
		}
	}()
	return c.Collect(ctx)
}

func joinErr(a, b error) error {
	if a == nil {
		return b
	}
	return fmt.Errorf("%w; %w", a, b)
}
