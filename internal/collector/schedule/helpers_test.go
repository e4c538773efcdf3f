package schedule

import (
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func ptr[T any](v T) *T { return &v }

func date(s string) *ScheduleDate { d := ScheduleDate(s); return &d }

func oneTime(start, end string, minutes int, value int64) Schedule {
	s := Schedule{Type: OneTimeSchedule, Date: date(start), DurationMinutes: minutes, Value: value}
	if end != "" {
		s.EndDate = date(end)
	}
	return s
}

func repeating(start, end string, minutes int, value int64, tz string, days ...ScheduleDay) Schedule {
	return Schedule{
		Type:            RepeatingSchedule,
		Period:          &SchedulePeriod{StartTime: start, EndTime: end, Days: days, Timezone: tz},
		DurationMinutes: minutes,
		Value:           value,
	}
}

// specW is a spec with scalingWindowDurationMinutes set (window ≥ 0) or unset
// (window < 0).
func specW(window int64, s ...Schedule) ScalingScheduleSpec {
	sp := ScalingScheduleSpec{Schedules: s}
	if window >= 0 {
		sp.ScalingWindowDurationMinutes = ptr(window)
	}
	return sp
}

func options(t testing.TB, window time.Duration, steps int, tz string) Options {
	t.Helper()
	o, err := NewOptions(window, steps, tz)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func loc(t testing.TB, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// point is one expectation: at instant, value and active.
type point struct {
	at     string
	value  int64
	active bool
}

func checkPoints(t *testing.T, spec ScalingScheduleSpec, opts Options, points []point) {
	t.Helper()
	for _, p := range points {
		v, active, err := Value(spec, at(p.at), opts)
		if err != nil {
			t.Errorf("at %s: %v", p.at, err)
			continue
		}
		if v != p.value || active != p.active {
			t.Errorf("at %s: got value %d active %v, want %d %v", p.at, v, active, p.value, p.active)
		}
	}
}
