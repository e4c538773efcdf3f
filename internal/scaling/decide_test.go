package scaling

import (
	"math/rand"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestDecide(t *testing.T) {
	tests := []struct {
		name               string
		min, max           int32
		current, evaluated int32
		want               int32
		disabled, change   bool
		reason             string
	}{
		{name: "within bounds", min: 1, max: 10, current: 1, evaluated: 3, want: 3, change: true, reason: "evaluated"},
		{name: "no change", min: 1, max: 10, current: 3, evaluated: 3, want: 3, reason: "no change"},
		{name: "below min", min: 2, max: 10, current: 3, evaluated: 0, want: 2, change: true, reason: "minReplicas 2"},
		{name: "above max", min: 1, max: 5, current: 3, evaluated: 50, want: 5, change: true, reason: "maxReplicas 5"},
		{name: "disabled at zero", min: 1, max: 5, current: 0, evaluated: 4, want: 0, disabled: true, reason: "disabled"},
		{name: "scale to zero", min: 0, max: 5, current: 2, evaluated: 0, want: 0, change: true},
		{name: "scale from zero", min: 0, max: 5, current: 0, evaluated: 2, want: 2, change: true},
		{name: "negative evaluation clamped", min: 0, max: 5, current: 1, evaluated: -3, want: 0, change: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecider(tt.min, tt.max, 0, clocktesting.NewFakePassiveClock(time.Unix(1000, 0)))
			got := d.Decide(tt.current, tt.evaluated)
			if got.Target != tt.want || got.Disabled != tt.disabled || got.Change() != tt.change {
				t.Fatalf("Decide(%d, %d) = %+v, want target %d disabled %v change %v", tt.current, tt.evaluated, got, tt.want, tt.disabled, tt.change)
			}
			if !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("reason %q does not mention %q", got.Reason, tt.reason)
			}
			if tt.disabled && len(d.History()) != 0 {
				t.Errorf("a disabled decision must not enter the stabilization history")
			}
		})
	}
}

func TestDownscaleStabilization(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	d := NewDecider(1, 10, 60*time.Second, clk)
	steps := []struct {
		advance   time.Duration
		current   int32
		evaluated int32
		want      int32
	}{
		{0, 1, 8, 8},                // upscale at once
		{10 * time.Second, 8, 3, 8}, // downscale held by the 8 seen 10s ago
		{20 * time.Second, 8, 5, 8},
		{31 * time.Second, 8, 4, 5}, // the 8 left the window (61s old); 5 (41s old) is highest
		{45 * time.Second, 5, 2, 4},
		{61 * time.Second, 4, 2, 2},
		{0, 2, 9, 9}, // upscale is never delayed
	}
	for i, s := range steps {
		clk.SetTime(clk.Now().Add(s.advance))
		got := d.Decide(s.current, s.evaluated)
		if got.Target != s.want {
			t.Fatalf("step %d: Decide(%d, %d) = %d (%s), want %d", i, s.current, s.evaluated, got.Target, got.Reason, s.want)
		}
	}
}

func TestRestoreHistory(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	d := NewDecider(1, 10, time.Minute, clk)
	d.Restore([]Record{{Time: clk.Now().Add(-30 * time.Second), Replicas: 7}, {Time: clk.Now().Add(-2 * time.Minute), Replicas: 9}})
	if got := d.Decide(7, 2); got.Target != 7 {
		t.Fatalf("restored history ignored: got %d, want 7", got.Target)
	}
	if n := len(d.History()); n != 2 {
		t.Fatalf("history has %d entries, want the 2 inside the window", n)
	}
}

// referenceDecider is the stabilization as first written: every record in the window
// kept, the maximum taken over all of them. The compacted history must decide the same.
type referenceDecider struct {
	min, max int32
	window   time.Duration
	history  []Record
}

func (r *referenceDecider) decide(now time.Time, current, evaluated int32) int32 {
	if current == 0 && r.min != 0 {
		return 0
	}
	target := min(max(evaluated, r.min), r.max)
	cutoff := now.Add(-r.window)
	kept := r.history[:0]
	for _, h := range r.history {
		if h.Time.After(cutoff) {
			kept = append(kept, h)
		}
	}
	r.history = append(kept, Record{Time: now, Replicas: target})
	for _, h := range r.history {
		target = max(target, h.Replicas)
	}
	return target
}

func TestStabilizationMatchesReference(t *testing.T) {
	for seed := range int64(200) {
		rng := rand.New(rand.NewSource(seed))
		minR := int32(rng.Intn(3))
		maxR := minR + 1 + int32(rng.Intn(30))
		window := time.Duration(rng.Intn(120)) * time.Second
		clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
		d := NewDecider(minR, maxR, window, clk)
		ref := &referenceDecider{min: minR, max: maxR, window: window}
		current := int32(1 + rng.Intn(5))
		for step := range 300 {
			if step == 150 {
				// A restart: the new Decider restores what the old one kept.
				saved := d.History()
				d = NewDecider(minR, maxR, window, clk)
				d.Restore(saved)
			}
			clk.SetTime(clk.Now().Add(time.Duration(rng.Intn(4000)) * time.Millisecond))
			evaluated := int32(rng.Intn(int(maxR)+5)) - 2
			got := d.Decide(current, evaluated)
			want := ref.decide(clk.Now(), current, evaluated)
			if got.Target != want {
				t.Fatalf("seed %d step %d: Decide(%d, %d) = %d, reference %d (window %s, history %v)", seed, step, current, evaluated, got.Target, want, window, d.History())
			}
			if !got.Disabled && rng.Intn(4) > 0 {
				current = got.Target
			}
		}
	}
}

// A one-hour window at a one-second interval keeps only the records that can decide: at
// most one per distinct replica count, not 3600.
func TestStabilizationHistoryStaysSmall(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	d := NewDecider(1, 10, time.Hour, clk)
	rng := rand.New(rand.NewSource(1))
	current := int32(5)
	for range 3 * 3600 {
		clk.SetTime(clk.Now().Add(time.Second))
		current = d.Decide(current, int32(1+rng.Intn(10))).Target
		if n := len(d.History()); n > 10 {
			t.Fatalf("history has %d records, want at most maxReplicas-minReplicas+1 = 10", n)
		}
	}
	// The same for a steady value: one record.
	for range 100 {
		clk.SetTime(clk.Now().Add(time.Second))
		d.Decide(current, 10)
	}
	if h := d.History(); len(h) != 1 || h[0].Replicas != 10 {
		t.Fatalf("history %v, want the one latest record of 10", h)
	}
}

// A history saved by a version that kept every record (or unsorted) is compacted on
// restore and still decides.
func TestRestoreCompacts(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(10000, 0))
	d := NewDecider(1, 10, time.Hour, clk)
	var saved []Record
	for i := range 3600 {
		saved = append(saved, Record{Time: clk.Now().Add(-time.Duration(3600-i) * time.Second), Replicas: int32(1 + i%4)})
	}
	saved[0], saved[len(saved)-1] = saved[len(saved)-1], saved[0] // out of order
	d.Restore(saved)
	if n := len(d.History()); n > 4 {
		t.Fatalf("restored history has %d records, want at most 4", n)
	}
	if got := d.Decide(4, 1); got.Target != 4 {
		t.Fatalf("Decide after restore = %d, want 4 (the highest in the window)", got.Target)
	}
}
