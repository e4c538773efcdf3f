// Package scaling turns an evaluated replica count into the replica count to apply:
// clamping to the configured bounds, the "autoscaling disabled" rule, and downscale
// stabilization.
package scaling

import (
	"fmt"
	"slices"
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

	mu sync.Mutex
	// history holds only the records that can still decide: see push.
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
	d.expire(now)
	at := now
	if n := len(d.history); n > 0 && d.history[n-1].Time.After(at) {
		// The wall clock stepped back (or a restored record is from a skewed clock): keep
		// the times ascending, which push relies on.
		at = d.history[n-1].Time
	}
	d.history = push(d.history, Record{Time: at, Replicas: target})
	stabilized := d.history[0].Replicas // the front is the highest still in the window
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

// Restore replaces the stabilization history, e.g. with one saved before a restart
// (possibly by an older version that kept every record). It keeps only the records that
// can still decide; entries outside the window are dropped at the next decision.
func (d *Decider) Restore(history []Record) {
	sorted := slices.Clone(history)
	slices.SortStableFunc(sorted, func(a, b Record) int { return a.Time.Compare(b.Time) })
	d.mu.Lock()
	defer d.mu.Unlock()
	d.history = d.history[:0]
	for _, r := range sorted {
		d.history = push(d.history, r)
	}
}

// The history is a monotonic queue: times ascending, replicas strictly descending. The
// stabilized value is the highest recommendation within the window, and a record with a
// later (or equal) time and a value at least as high stays in the window at least as
// long, so an earlier record it dominates can never decide again and is dropped. With
// replicas clamped to [min, max] the queue holds at most max-min+1 records, whatever the
// window and interval.

// push appends r after dropping the records it dominates.
func push(h []Record, r Record) []Record {
	for len(h) > 0 && h[len(h)-1].Replicas <= r.Replicas {
		h = h[:len(h)-1]
	}
	return append(h, r)
}

// expire drops the records that have left the window; they are the oldest, at the front.
func (d *Decider) expire(now time.Time) {
	cutoff := now.Add(-d.window)
	i := 0
	for i < len(d.history) && !d.history[i].Time.After(cutoff) {
		i++
	}
	// Copy down rather than reslice so the backing array does not creep forward.
	d.history = append(d.history[:0], d.history[i:]...)
}
