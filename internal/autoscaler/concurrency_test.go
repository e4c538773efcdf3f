package autoscaler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/custompodautoscaler/cpa/internal/config"
)

// waitFor polls cond with a generous deadline: what it waits for does not depend on
// timing, only the deadline does, and that only catches a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Parallel API requests share the per-pod concurrency: 10 parallel metric requests over
// 5 pods with perPodConcurrency 2 never run more than 2 metric calls at once.
func TestParallelRequestsShareConcurrency(t *testing.T) {
	tgt := &fakeTarget{replicas: 5}
	for i := range 5 {
		tgt.pods = append(tgt.pods, pod(fmt.Sprintf("pod-%d", i), corev1.PodRunning))
	}
	var running, peak, calls atomic.Int32
	metric := &funcRunner{fn: func([]byte) ([]byte, error) {
		n := running.Add(1)
		defer running.Add(-1)
		calls.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(2 * time.Millisecond) // widen the window in which a third call could start
		return []byte("1"), nil
	}}
	cfg := testConfig(config.RunModePerPod)
	cfg.PerPodConcurrency = 2
	a := newTest(t, cfg, tgt, Stages{Metric: metric, Evaluate: constant(`{"targetReplicas": 5}`)})
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Go(func() {
			if i%2 == 0 {
				_, err := a.Metrics(context.Background(), config.RunTypeAPI)
				errs <- err
				return
			}
			_, err := a.Evaluate(context.Background(), config.RunTypeAPIDryRun, true)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if calls.Load() != 50 {
		t.Fatalf("%d metric calls, want 50", calls.Load())
	}
	if p := peak.Load(); p > 2 {
		t.Fatalf("%d metric calls ran at once, want at most perPodConcurrency 2", p)
	}
}

// A caller that goes away while waiting for a call slot frees its place at once.
func TestWaitingForASlotEndsWithTheContext(t *testing.T) {
	release := make(chan struct{})
	var running atomic.Int32
	metric := &funcRunner{fn: func([]byte) ([]byte, error) {
		running.Add(1)
		<-release
		return []byte("1"), nil
	}}
	cfg := testConfig(config.RunModePerResource)
	cfg.PerPodConcurrency = 1
	a := newTest(t, cfg, &fakeTarget{replicas: 1}, Stages{Metric: metric, Evaluate: constant(`{"targetReplicas": 1}`)})
	done := make(chan error, 1)
	go func() { _, err := a.Metrics(context.Background(), config.RunTypeAPI); done <- err }()
	waitFor(t, "the first call to hold the only slot", func() bool { return running.Load() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Metrics(ctx, config.RunTypeAPI); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want the caller's cancellation", err)
	}
	if running.Load() != 1 {
		t.Fatalf("a cancelled caller ran the metric stage")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A cycle abandoned by its caller (an API client that disconnected, shutdown) is not a
// failed cycle: the status reporter does not see it. A real failure still reaches it.
func TestAbandonedCycleIsNotReported(t *testing.T) {
	var reported []error
	started := make(chan struct{}, 1)
	ctxRunner := runnerFunc(func(ctx context.Context, _ []byte) ([]byte, error) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, fmt.Errorf("shell command interrupted: %w", context.Cause(ctx))
	})
	cfg := testConfig(config.RunModePerResource)
	a, err := New(cfg, Options{
		Target: &fakeTarget{replicas: 1},
		Stages: Stages{Metric: ctxRunner, Evaluate: constant(`{"targetReplicas": 1}`)},
		OnCycle: func(_ context.Context, _ *Result, err error) {
			reported = append(reported, err)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := a.Evaluate(ctx, config.RunTypeAPI, false); done <- err }()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want the cancellation", err)
	}
	if len(reported) != 0 {
		t.Fatalf("an abandoned cycle was reported to OnCycle: %v", reported)
	}

	a.stages.Metric = runnerFunc(func(context.Context, []byte) ([]byte, error) { return nil, errors.New("exit status 1") })
	if _, err := a.RunCycle(context.Background(), config.RunTypeScaler); err == nil {
		t.Fatal("cycle did not fail")
	}
	if len(reported) != 1 || reported[0] == nil {
		t.Fatalf("reported %v, want the one failed cycle", reported)
	}
}

// An API request waiting for the cycle in progress gives up when its client does.
func TestScaleWaitEndsWithTheContext(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	metric := runnerFunc(func(context.Context, []byte) ([]byte, error) {
		once.Do(func() { close(started) })
		<-release
		return []byte("1"), nil
	})
	a := newTest(t, testConfig(config.RunModePerResource), &fakeTarget{replicas: 1}, Stages{Metric: metric, Evaluate: constant(`{"targetReplicas": 1}`)})
	done := make(chan error, 1)
	go func() { _, err := a.RunCycle(context.Background(), config.RunTypeScaler); done <- err }()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Evaluate(ctx, config.RunTypeAPI, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want the cancellation", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type runnerFunc func(ctx context.Context, input []byte) ([]byte, error)

func (f runnerFunc) Run(ctx context.Context, input []byte) ([]byte, error) { return f(ctx, input) }

// A cycle that scaled is reported with a live context even when its caller's ends just
// after (an API client that leaves once the target is scaled): the status must say so.
func TestScaledCycleReportedAfterCallerLeaves(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var reportErr error
	reported := 0
	tgt := &fakeTarget{replicas: 1}
	a, err := New(testConfig(config.RunModePerResource), Options{
		Target: tgt,
		Stages: Stages{
			Metric: constant("1"),
			// The caller goes away once the evaluation is in; the cycle still scales.
			Evaluate: runnerFunc(func(context.Context, []byte) ([]byte, error) { cancel(); return []byte(`{"targetReplicas": 3}`), nil }),
		},
		OnCycle: func(ctx context.Context, _ *Result, _ error) { reported++; reportErr = ctx.Err() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Evaluate(ctx, config.RunTypeAPI, false); err != nil {
		t.Fatal(err)
	}
	if len(tgt.scaledTo) != 1 || reported != 1 || reportErr != nil {
		t.Fatalf("scaled %v, reported %d times with context error %v; want one report with a live context", tgt.scaledTo, reported, reportErr)
	}
}
