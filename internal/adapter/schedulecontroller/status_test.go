package schedulecontroller

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"

	zv1 "github.com/custompodautoscaler/cpa/api/zalando/v1"
	"github.com/custompodautoscaler/cpa/internal/collector/schedule"
)

func TestStatusFollowsScheduleAndRamps(t *testing.T) {
	for _, lagging := range []bool{false, true} {
		name := "informer sees writes"
		if lagging {
			name = "informer lags behind writes"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			if lagging {
				e.status.apply = nil
			}
			// 10:00 to 11:00, window 10 m: active in [09:50, 11:10).
			e.schedules.addScalingSchedule("app", "sale", oneTime(t0, 60, 100))
			ref := ScheduleRef{Kind: KindScalingSchedule, Namespace: "app", Name: "sale"}

			steps := []struct {
				at   time.Time
				want []statusWrite
			}{
				{t0.Add(-time.Hour), nil},
				{t0.Add(-10*time.Minute - time.Second), nil},
				{t0.Add(-10 * time.Minute), []statusWrite{{ref, true}}}, // the ramp starts
				{t0.Add(-5 * time.Minute), nil},
				{t0, nil},
				{t0.Add(70*time.Minute - time.Second), nil},
				{t0.Add(70 * time.Minute), []statusWrite{{ref, false}}}, // the ramp down ends
				{t0.Add(2 * time.Hour), nil},
			}
			var all []statusWrite
			for _, s := range steps {
				e.at(s.at)
				all = append(all, s.want...)
				if diff := cmp.Diff(all, e.status.get(), cmp.AllowUnexported(statusWrite{})); diff != "" {
					t.Fatalf("at %s: writes (-want +got):\n%s", s.at.Format(time.TimeOnly), diff)
				}
			}
		})
	}
}

func TestStatusWithoutRamp(t *testing.T) {
	e := newEnv(t)
	spec := oneTime(t0, 30, 5)
	spec.ScalingWindowDurationMinutes = ptr(int64(0))
	e.schedules.addClusterScalingSchedule("black-friday", spec)
	ref := ScheduleRef{Kind: KindClusterScalingSchedule, Name: "black-friday"}

	e.at(t0.Add(-time.Second))
	e.at(t0)
	e.at(t0.Add(29 * time.Minute))
	e.at(t0.Add(30 * time.Minute))
	want := []statusWrite{{ref, true}, {ref, false}}
	if diff := cmp.Diff(want, e.status.get(), cmp.AllowUnexported(statusWrite{})); diff != "" {
		t.Fatalf("writes (-want +got):\n%s", diff)
	}
}

func TestStatusAlreadyRightIsNotWritten(t *testing.T) {
	e := newEnv(t)
	e.schedules.addScalingSchedule("app", "on", oneTime(t0, 60, 1))
	e.schedules.setActive(ScheduleRef{Kind: KindScalingSchedule, Namespace: "app", Name: "on"}, true)
	e.schedules.addScalingSchedule("app", "off", oneTime(t0.Add(5*time.Hour), 60, 1))
	e.at(t0)
	if w := e.status.get(); len(w) != 0 {
		t.Fatalf("writes = %v, want none", w)
	}
}

func TestStatusWriteFailureIsRetried(t *testing.T) {
	e := newEnv(t)
	e.schedules.addScalingSchedule("app", "sale", oneTime(t0, 60, 100))
	e.status.err = errors.New("boom")
	e.at(t0)
	e.status.err = nil
	e.at(t0.Add(10 * time.Second))
	want := []statusWrite{{ScheduleRef{Kind: KindScalingSchedule, Namespace: "app", Name: "sale"}, true}}
	if diff := cmp.Diff(want, e.status.get(), cmp.AllowUnexported(statusWrite{})); diff != "" {
		t.Fatalf("writes (-want +got):\n%s", diff)
	}
	if !strings.Contains(e.logs.String(), "boom") {
		t.Errorf("the failure is not logged:\n%s", e.logs)
	}
}

func TestInvalidSpecOneEventNoWrite(t *testing.T) {
	e := newEnv(t)
	bad := zv1.ScalingScheduleSpec{Schedules: []zv1.Schedule{{
		Type:            zv1.RepeatingSchedule,
		Period:          &zv1.SchedulePeriod{StartTime: "10:00", Days: []zv1.ScheduleDay{zv1.MondaySchedule}, Timezone: "Mars/Olympus"},
		DurationMinutes: 60,
		Value:           3,
	}}}
	e.schedules.addClusterScalingSchedule("mars", bad)
	for i := range 5 {
		e.at(t0.Add(time.Duration(i) * 10 * time.Second))
	}
	if w := e.status.get(); len(w) != 0 {
		t.Fatalf("writes = %v, want none", w)
	}
	ev := e.recorder.get()
	if len(ev) != 1 {
		t.Fatalf("events = %v, want one", ev)
	}
	if ev[0].typ != corev1.EventTypeWarning || ev[0].reason != ReasonInvalidSchedule || !strings.Contains(ev[0].message, "Mars/Olympus") {
		t.Errorf("event = %+v", ev[0])
	}
	obj, ok := ev[0].object.(*zv1.ClusterScalingSchedule)
	if !ok || obj.Name != "mars" || obj.Kind != KindClusterScalingSchedule || obj.APIVersion != "zalando.org/v1" {
		t.Errorf("event object = %#v, want the ClusterScalingSchedule with its TypeMeta", ev[0].object)
	}
	if n := strings.Count(e.logs.String(), "invalid scaling schedule"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, e.logs)
	}

	// Another invalid spec: one more event.
	bad.Schedules[0].Period.Timezone = "Venus/Maxwell"
	e.schedules.updateClusterSpec("mars", bad)
	e.at(t0.Add(time.Minute))
	e.at(t0.Add(time.Minute + 10*time.Second))
	if ev := e.recorder.get(); len(ev) != 2 || !strings.Contains(ev[1].message, "Venus/Maxwell") {
		t.Fatalf("events = %v, want a second one about the new zone", ev)
	}

	// Fixed: the status follows again, with no more events.
	e.schedules.updateClusterSpec("mars", oneTime(t0, 60, 3))
	e.at(t0.Add(2 * time.Minute))
	want := []statusWrite{{ScheduleRef{Kind: KindClusterScalingSchedule, Name: "mars"}, true}}
	if diff := cmp.Diff(want, e.status.get(), cmp.AllowUnexported(statusWrite{})); diff != "" {
		t.Fatalf("writes (-want +got):\n%s", diff)
	}
	if ev := e.recorder.get(); len(ev) != 2 {
		t.Fatalf("events = %v, want still two", ev)
	}
}

func TestRunTicks(t *testing.T) {
	e := newEnv(t)
	e.schedules.addScalingSchedule("app", "sale", oneTime(t0, 60, 100))
	e.clock.SetTime(t0.Add(-10*time.Minute - 5*time.Second))
	synced := make(chan struct{})
	e.c.opts.Synced = append(e.c.opts.Synced, func() bool {
		select {
		case <-synced:
			return true
		default:
			return false
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.c.Run(ctx) }()
	close(synced)

	waitFor(t, "the ticker", func() bool { return e.clock.HasWaiters() })
	if w := e.status.get(); len(w) != 0 {
		t.Fatalf("writes before the ramp = %v", w)
	}
	e.clock.Step(DefaultInterval)
	waitFor(t, "the status write", func() bool { return len(e.status.get()) == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNewOptions(t *testing.T) {
	s := newFakeSchedules()
	st := &fakeStatus{}
	good, err := schedule.NewOptions(0, 10, "UTC")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(nil, nil, st, nil, Options{Schedule: good}); err == nil {
		t.Error("New without schedules: no error")
	}
	if _, err := New(s, nil, st, nil, Options{}); err == nil {
		t.Error("New with zero schedule options (0 ramp steps): no error")
	}
	if _, err := New(s, nil, st, nil, Options{Schedule: good, Tolerance: -0.1}); err == nil {
		t.Error("New with a negative tolerance: no error")
	}
	c, err := New(s, fakeHPAs{}, st, nil, Options{Schedule: good, Clock: clocktesting.NewFakeClock(t0), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if c.opts.Interval != DefaultInterval || c.opts.Tolerance != DefaultTolerance || c.opts.Workers != DefaultWorkers || c.scaler != nil {
		t.Errorf("defaults: %+v, adjuster %v", c.opts, c.scaler != nil)
	}
	c.Tick(context.Background()) // no adjuster without a scaler: must not panic
}

func TestCacheProblemLoggedOncePerChange(t *testing.T) {
	e := newEnv(t)
	e.schedules.addScalingSchedule("app", "sale", oneTime(t0, 60, 100))
	e.schedules.listErr = errors.New("ScalingSchedule app/bad: cannot convert")
	for i := range 3 {
		e.at(t0.Add(time.Duration(i) * 10 * time.Second))
	}
	if n := strings.Count(e.logs.String(), "cannot convert"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, e.logs)
	}
	if w := e.status.get(); len(w) != 1 {
		t.Errorf("writes = %v, want the good object's one", w)
	}
}
