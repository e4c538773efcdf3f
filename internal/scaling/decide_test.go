package scaling

import (
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
