// Package scaling turns an evaluated replica count into the replica count to apply:
// clamping to the configured bounds, the "autoscaling disabled" rule, and downscale
// stabilization.
package scaling

import (
	"fmt"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Decision is what to do with the target.
type Decision struct {
	// Current is the target's replica count before the decision.
	Current int32
	// Evaluated is the evaluate stage's raw value.
	Evaluated int32
	// Target is the replica count to apply (equal to Current when nothing changes).
	Target int32
	// Disabled is true when autoscaling is off for the target: it has 0 replicas and
	// minReplicas is not 0. Nothing is scaled and no scale hooks run.
	Disabled bool
	// Reason says in a few words how Target was reached.
	Reason string
}

// Change reports whether the decision changes the target's replica count.
func (d Decision) Change() bool { return !d.Disabled && d.Target != d.Current }

// Record is one entry of the downscale-stabilization history.
type Record struct {
	Time     time.Time `json:"time"`
	Replicas int32     `json:"replicas"`
}

// Decider makes scaling decisions. It is safe for concurrent use; the stabilization
// history it keeps is shared by every caller (the scheduled loop and the REST API).
type Decider struct {
	min, max int32
	window   time.Duration
	clock    clock.PassiveClock

	mu      sync.Mutex
	history []Record
}

// NewDecider returns a Decider for the given bounds and downscale-stabilization window.
func NewDecider(minReplicas, maxReplicas int32, window time.Duration, clk clock.PassiveClock) *Decider {
	return &Decider{min: minReplicas, max: maxReplicas, window: window, clock: clk}
}

// Decide returns the decision for an evaluated replica count given the current one and
// records it in the stabilization history. With a window, downscales take the highest
// recommendation seen within it; upscales apply at once.
func (d *Decider) Decide(current, evaluated int32) Decision {
	dec := Decision{Current: current, Evaluated: evaluated}
	if current == 0 && d.min != 0 {
		dec.Disabled = true
		dec.Target = 0
		dec.Reason = fmt.Sprintf("autoscaling disabled: target has 0 replicas and minReplicas is %d", d.min)
		return dec
	}
	target, reason := evaluated, "evaluated"
	switch {
	case target < d.min:
		target, reason = d.min, fmt.Sprintf("raised to minReplicas %d", d.min)
	case target > d.max:
		target, reason = d.max, fmt.Sprintf("lowered to maxReplicas %d", d.max)
	}

	d.mu.Lock()
	now := d.clock.Now()
	cutoff := now.Add(-d.window)
	kept := d.history[:0]
	for _, r := range d.history {
		if r.Time.After(cutoff) {
			kept = append(kept, r)
		}
	}
	d.history = append(kept, Record{Time: now, Replicas: target})
	stabilized := target
	for _, r := range d.history {
		stabilized = max(stabilized, r.Replicas)
	}
	d.mu.Unlock()

	if stabilized != target {
		reason = fmt.Sprintf("downscale stabilized: highest recommendation in the last %s is %d", d.window, stabilized)
		target = stabilized
	}
	if target == current {
		reason += "; no change"
	}
	dec.Target = target
	dec.Reason = reason
	return dec
}

// History returns a copy of the stabilization history, oldest first.
func (d *Decider) History() []Record {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Record(nil), d.history...)
}

// Restore replaces the stabilization history, e.g. with one saved before a restart.
// Entries outside the window are dropped at the next decision.
func (d *Decider) Restore(history []Record) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.history = append(d.history[:0], history...)
}
