package collect

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/custompodautoscaler/cpa/internal/adapter/annotations"
	"github.com/custompodautoscaler/cpa/internal/adapter/store"
	"github.com/custompodautoscaler/cpa/internal/collector"
)

var (
	owner  = types.NamespacedName{Namespace: "ns", Name: "web"}
	extKey = annotations.MetricKey{Type: autoscalingv2.ExternalMetricSourceType, Name: "queue"}
)

// scripted returns its results in turn, repeating the last; it counts calls.
type scripted struct {
	mu      sync.Mutex
	results []result
	calls   atomic.Int32
	called  chan struct{}
}

type result struct {
	value string // "" for none
	err   error
	panic bool
	block bool // wait for ctx
}

func newScripted(rs ...result) *scripted {
	return &scripted{results: rs, called: make(chan struct{}, 100)}
}

func (s *scripted) Collect(ctx context.Context) ([]collector.Value, error) {
	n := int(s.calls.Add(1))
	defer func() { s.called <- struct{}{} }()
	s.mu.Lock()
	r := s.results[min(n, len(s.results))-1]
	s.mu.Unlock()
	if r.panic {
		panic("boom")
	}
	if r.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	var vs []collector.Value
	if r.value != "" {
		vs = []collector.Value{{Value: resource.MustParse(r.value)}}
	}
	return vs, r.err
}

type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) CollectionFailed(_ store.Owner, _ annotations.MetricKey, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, "failed: "+err.Error())
}

func (e *events) CollectionRecovered(store.Owner, annotations.MetricKey) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, "recovered")
}

func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.list...)
}

// fixture runs a scheduler on a fake clock.
type fixture struct {
	clock  *clocktesting.FakeClock
	store  *store.Store
	sched  *Scheduler
	events *events
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	f := &fixture{clock: clocktesting.NewFakeClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)), events: &events{}, reg: prometheus.NewRegistry()}
	f.store = store.New(10*time.Minute, f.clock, nil)
	opts.Clock, opts.Reporter, opts.Metrics = f.clock, f.events, NewMetrics(f.reg)
	f.sched = New(f.store, opts)
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	go func() { f.sched.Run(ctx); close(f.done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-f.done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return f
}

// waitCalls waits until c has been called n times in all.
func waitCalls(t *testing.T, c *scripted, n int32) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for c.calls.Load() < n {
		select {
		case <-c.called:
		case <-time.After(time.Millisecond): // a blocked Collect signals nothing
		case <-deadline:
			t.Fatalf("collector called %d times, want %d", c.calls.Load(), n)
		}
	}
}

// tick advances the clock by d once the job's timer is waiting.
func (f *fixture) tick(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f.clock.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("no job waits on the clock")
		}
		time.Sleep(time.Millisecond)
	}
	f.clock.Step(d)
}

func served(f *fixture) string {
	items := f.store.External("ns", "queue", labels.Everything())
	if len(items) == 0 {
		return ""
	}
	return items[0].Value.Value.String()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCollectsOnIntervalAndReportsChanges(t *testing.T) {
	f := newFixture(t, Options{})
	c := newScripted(result{value: "3"}, result{err: errors.New("source down")}, result{err: errors.New("source down")},
		result{err: errors.New("other")}, result{value: "5"})
	f.sched.Start(owner, Job{Key: extKey, Type: "json-path", Interval: 30 * time.Second, Collector: c})

	waitCalls(t, c, 1) // at once
	eventually(t, "the first value", func() bool { return served(f) == "3" })
	for n := int32(2); n <= 5; n++ {
		f.tick(t, 30*time.Second)
		waitCalls(t, c, n)
		if n < 5 && served(f) != "3" {
			t.Errorf("after failed collection %d the last good value is %q, want 3 (until the TTL)", n, served(f))
		}
	}
	eventually(t, "the last value", func() bool { return served(f) == "5" })
	want := []string{
		"failed: collecting External/queue (json-path): source down",
		// the same error again is not reported again
		"failed: collecting External/queue (json-path): other",
		"recovered",
	}
	eventually(t, "three reports", func() bool { return len(f.events.get()) == 3 })
	got := f.events.get()
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("report %d = %q, want %q", i, got[i], want[i])
		}
	}
	if n := testutil.ToFloat64(f.sched.opts.Metrics.errors.WithLabelValues("json-path")); n != 3 {
		t.Errorf("errors metric = %v, want 3", n)
	}
	if n := testutil.ToFloat64(f.sched.opts.Metrics.success); n != 2 {
		t.Errorf("success metric = %v, want 2", n)
	}
}

func TestFailedValueExpiresAfterTTL(t *testing.T) {
	f := newFixture(t, Options{})
	c := newScripted(result{value: "3"}, result{err: errors.New("source down")})
	f.sched.Start(owner, Job{Key: extKey, Type: "json-path", Interval: 4 * time.Minute, Collector: c})
	waitCalls(t, c, 1)
	eventually(t, "the first value", func() bool { return served(f) == "3" })
	for n := int32(2); n <= 3; n++ {
		f.tick(t, 4*time.Minute)
		waitCalls(t, c, n)
	}
	if served(f) != "3" {
		t.Fatalf("8 min after the last success (TTL 10 min) the value is %q, want 3", served(f))
	}
	f.tick(t, 4*time.Minute)
	waitCalls(t, c, 4)
	if v := served(f); v != "" {
		t.Errorf("12 min after the last success (TTL 10 min) the value %q is still served", v)
	}
	if age := f.sched.ages()["json-path"]; age != 12*time.Minute {
		t.Errorf("value age = %s, want 12m", age)
	}
}

func TestPartialResultIsStoredAndReported(t *testing.T) {
	f := newFixture(t, Options{})
	c := newScripted(result{value: "7", err: errors.New("2 of 3 pods did not answer")})
	f.sched.Start(owner, Job{Key: extKey, Type: "json-path", Interval: time.Minute, Collector: c})
	eventually(t, "the partial value", func() bool { return served(f) == "7" })
	eventually(t, "the report", func() bool { return len(f.events.get()) == 1 })
	if got := f.events.get()[0]; !strings.Contains(got, "2 of 3 pods did not answer") {
		t.Errorf("report = %q", got)
	}
}

func TestPanicBecomesError(t *testing.T) {
	f := newFixture(t, Options{})
	c := newScripted(result{panic: true})
	f.sched.Start(owner, Job{Key: extKey, Type: "x", Interval: time.Minute, Collector: c})
	eventually(t, "the report", func() bool { return len(f.events.get()) == 1 })
	if got := f.events.get()[0]; !strings.Contains(got, "collector panicked: boom") {
		t.Errorf("report = %q", got)
	}
}

func TestCollectionIsBoundedInTime(t *testing.T) {
	// MaxTimeout is real time (context deadlines do not follow the fake clock); the
	// verdict does not depend on how long it takes, only that the block ends.
	f := newFixture(t, Options{MaxTimeout: 20 * time.Millisecond})
	c := newScripted(result{block: true})
	f.sched.Start(owner, Job{Key: extKey, Type: "x", Interval: time.Hour, Collector: c})
	eventually(t, "the report", func() bool { return len(f.events.get()) == 1 })
	if got := f.events.get()[0]; !strings.Contains(got, "did not finish within 20ms") {
		t.Errorf("report = %q", got)
	}
}

func TestStopRemovesValuesAndReplaceStartsClean(t *testing.T) {
	f := newFixture(t, Options{})
	c := newScripted(result{value: "3"})
	f.sched.Start(owner, Job{Key: extKey, Type: "x", Interval: time.Minute, Collector: c})
	eventually(t, "the value", func() bool { return served(f) == "3" })

	// A new configuration of the same metric: the old values go before the new
	// collector runs, and the old collector runs no more.
	blocked := newScripted(result{block: true})
	f.sched.Start(owner, Job{Key: extKey, Type: "y", Interval: time.Minute, Collector: blocked})
	if v := served(f); v != "" {
		t.Errorf("after replacing the collector the old value %q is served", v)
	}
	waitCalls(t, blocked, 1)
	if n := f.sched.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
	calls := c.calls.Load()
	f.sched.StopAll(owner)
	if n := f.sched.Len(); n != 0 {
		t.Errorf("Len after StopAll = %d, want 0", n)
	}
	f.clock.Step(time.Hour)
	if c.calls.Load() != calls {
		t.Error("a replaced collector was called again")
	}
	if got := testutil.ToFloat64(f.sched.opts.Metrics.jobs.WithLabelValues("x")) + testutil.ToFloat64(f.sched.opts.Metrics.jobs.WithLabelValues("y")); got != 0 {
		t.Errorf("collectors gauge = %v after StopAll, want 0", got)
	}
}

// gate blocks every Collect until released, counting how many run at once.
type gate struct {
	inFlight, peak atomic.Int32
	entered        chan struct{}
	release        chan struct{}
}

func (g *gate) Collect(ctx context.Context) ([]collector.Value, error) {
	n := g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	g.entered <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
	}
	return []collector.Value{{Value: resource.MustParse("1")}}, nil
}

func TestConcurrencyIsBounded(t *testing.T) {
	f := newFixture(t, Options{MaxConcurrent: 2})
	g := &gate{entered: make(chan struct{}, 10), release: make(chan struct{})}
	for i := range 6 {
		key := annotations.MetricKey{Type: autoscalingv2.ExternalMetricSourceType, Name: "m" + string(rune('a'+i))}
		f.sched.Start(owner, Job{Key: key, Type: "x", Interval: time.Hour, Collector: g})
	}
	recv := func() {
		t.Helper()
		select {
		case <-g.entered:
		case <-time.After(30 * time.Second):
			t.Fatal("collections did not all run")
		}
	}
	recv()
	recv() // two collections hold the two slots; none has been released
	for i := range 6 {
		g.release <- struct{}{}
		if i < 4 {
			recv()
		}
		if p := g.peak.Load(); p > 2 {
			t.Fatalf("%d collections ran at once, want at most 2", p)
		}
	}
	if p := g.peak.Load(); p != 2 {
		t.Errorf("peak concurrency %d, want 2", p)
	}
}

type closing struct {
	*scripted
	closed atomic.Bool
}

func (c *closing) Close() error { c.closed.Store(true); return nil }

func TestStopClosesCollector(t *testing.T) {
	f := newFixture(t, Options{})
	c := &closing{scripted: newScripted(result{value: "1"})}
	f.sched.Start(owner, Job{Key: extKey, Type: "x", Interval: time.Minute, Collector: c})
	waitCalls(t, c.scripted, 1)
	f.sched.Stop(owner, extKey)
	if !c.closed.Load() {
		t.Error("a stopped collector was not closed")
	}
}

// slow takes 5 s of the fake clock per collection.
type slow struct {
	clock *clocktesting.FakeClock
	calls atomic.Int32
}

func (s *slow) Collect(context.Context) ([]collector.Value, error) {
	s.calls.Add(1)
	s.clock.Step(5 * time.Second)
	return []collector.Value{{Value: resource.MustParse("1")}}, nil
}

func TestCollectionsStartEveryInterval(t *testing.T) {
	f := newFixture(t, Options{})
	c := &slow{clock: f.clock}
	f.sched.Start(owner, Job{Key: extKey, Type: "x", Interval: 30 * time.Second, Collector: c})
	eventually(t, "the first collection", func() bool { return c.calls.Load() == 1 })
	// The first collection took 5 s: the next starts 25 s later, 30 s after the first.
	f.tick(t, 25*time.Second)
	eventually(t, "the second collection", func() bool { return c.calls.Load() == 2 })
}
