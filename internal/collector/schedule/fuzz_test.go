package schedule

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzSpec feeds arbitrary field values (and arbitrary JSON) to Validate and
// Evaluate: they must never panic, every error must be made of *FieldErrors
// naming a spec field, and a spec Validate accepts must evaluate without an
// error at any instant, to a value between 0 and the largest schedule value.
func FuzzSpec(f *testing.F) {
	f.Add("OneTime", "2021-10-02T08:08:08+02:00", "", "", "", "", "Mon", int64(30), int64(100), int64(-1), int64(0))
	f.Add("Repeating", "", "", "15:45", "", "Europe/Berlin", "Mon,Wed,Fri", int64(10), int64(120), int64(10), int64(1633154888))
	f.Add("Repeating", "", "", "22:00", "02:00", "America/New_York", "Fri", int64(0), int64(7), int64(0), int64(1774746000))
	f.Add("Repeating", "x", "y", "25:00", "9:5", "Mars/Olympus", "Monday,,Sun", int64(-1), int64(-1), int64(-5), int64(-1))
	f.Add("OneTime", "2021-10-02T08:08:08Z", "2021-10-02T08:08:08Z", "", "", "", "", int64(0), int64(1), int64(1<<40), int64(1<<62))
	f.Add(`{"schedules":[{"type":"OneTime"`, "", "", "", "", "Local", "", int64(0), int64(0), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, typ, date, endDate, startTime, endTime, zone, days string, minutes, value, window, unix int64) {
		s := Schedule{Type: ScheduleType(typ), DurationMinutes: int(minutes), Value: value}
		if date != "" {
			s.Date = (*ScheduleDate)(&date)
		}
		if endDate != "" {
			s.EndDate = (*ScheduleDate)(&endDate)
		}
		if startTime != "" || endTime != "" || zone != "" || days != "" {
			p := &SchedulePeriod{StartTime: startTime, EndTime: endTime, Timezone: zone}
			for _, d := range strings.Split(days, ",") {
				p.Days = append(p.Days, ScheduleDay(d))
			}
			s.Period = p
		}
		spec := ScalingScheduleSpec{Schedules: []Schedule{s, s}}
		if window >= -2 {
			spec.ScalingWindowDurationMinutes = &window
		}
		check(t, spec, time.Unix(unix, unix%1e9))

		// The strings as a whole document, too.
		var fromJSON ScalingScheduleSpec
		if json.Unmarshal([]byte(typ), &fromJSON) == nil {
			check(t, fromJSON, time.Unix(unix, 0))
		}
	})
}

func check(t *testing.T, spec ScalingScheduleSpec, now time.Time) {
	opts := Options{DefaultScalingWindow: 10 * time.Minute, RampSteps: 10, DefaultTimeZone: time.UTC}
	verr := Validate(spec)
	r, err := Evaluate(spec, now, opts)
	if (verr == nil) != (err == nil) {
		t.Fatalf("Validate %v, Evaluate %v", verr, err)
	}
	if verr != nil {
		for _, e := range unjoin(verr) {
			var fe *FieldError
			if !errors.As(e, &fe) || !strings.HasPrefix(fe.Field, "spec.") || fe.Detail == "" {
				t.Fatalf("not a field error: %#v", e)
			}
		}
		if r != (Result{}) {
			t.Fatalf("a result with an error: %+v", r)
		}
		return
	}
	var top int64
	for _, s := range spec.Schedules {
		top = max(top, s.Value)
	}
	if r.Value < 0 || r.Value > r.ActiveMax || r.ActiveMax > top || (!r.Active && r.ActiveMax != 0) {
		t.Fatalf("at %s: %+v (largest value %d)", now, r, top)
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
