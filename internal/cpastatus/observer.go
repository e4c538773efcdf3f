package cpastatus

import (
	"context"
	"log/slog"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/custompodautoscaler/cpa/internal/scaling"
)

// EventRecorder records an event about an object; k8s.io/client-go/tools/events's
// EventRecorder is one.
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// ObserverOptions configure an Observer.
type ObserverOptions struct {
	Reporter *Reporter
	// Events records the events; nil records none.
	Events EventRecorder
	// Target names the scale target in event notes: "Kind/name".
	Target string
	// MinReplicas and MaxReplicas are the config's bounds, for ScalingLimited.
	MinReplicas, MaxReplicas int32
	// History returns the downscale-stabilization history to keep in the status; nil
	// when stabilization is off (nothing is kept).
	History func() []scaling.Record
	Logger  *slog.Logger
}

// Observer reports each finished cycle: it writes the status when it changed, and
// records an event for every scale and for a failure whose message differs from the
// previous cycle's (a failure repeated every cycle is one event).
type Observer struct {
	o ObserverOptions

	mu      sync.Mutex // cycles of the loop and of the REST API may end at once
	prevErr string     // the previous cycle's error message; "" if it succeeded
}

// NewObserver returns an Observer.
func NewObserver(o ObserverOptions) *Observer {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Observer{o: o}
}

// Observe reports one finished cycle. c carries the cycle's error, metric count,
// decision and whether it scaled; Observe fills in the rest (Limited, History).
func (ob *Observer) Observe(ctx context.Context, c Cycle) {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	c.Limited = Limited(c.Decision, ob.o.MinReplicas, ob.o.MaxReplicas)
	c.KeepTrail = ob.o.History != nil
	if c.KeepTrail {
		c.History = ob.o.History()
	}
	if _, err := ob.o.Reporter.Report(ctx, c); err != nil {
		// The autoscaler works without its status: say so and go on.
		ob.o.Logger.Warn("status not written", "customPodAutoscaler", ob.o.Reporter.name, "error", err)
	}
	if ev, ok := EventFor(c, ob.o.Target, ob.prevErr); ok && ob.o.Events != nil {
		if obj := ob.o.Reporter.Object(); obj != nil {
			ob.o.Events.Eventf(obj, nil, ev.Type, ev.Reason, ev.Action, "%s", ev.Note)
		}
	}
	ob.prevErr = ""
	if c.Err != nil {
		ob.prevErr = c.Err.Error()
	}
}

// Limited reports whether a decision clamped the evaluation to minReplicas..maxReplicas.
// A disabled autoscaler decided nothing, so it is not limited.
func Limited(d *scaling.Decision, minReplicas, maxReplicas int32) bool {
	if d == nil || d.Disabled {
		return false
	}
	return d.Evaluated < minReplicas || d.Evaluated > maxReplicas
}
