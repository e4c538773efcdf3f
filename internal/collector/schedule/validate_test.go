package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateErrors(t *testing.T) {
	good := repeating("09:00", "10:00", 0, 1, "UTC", MondaySchedule)
	withPeriod := func(f func(*SchedulePeriod)) Schedule {
		s := good
		p := *good.Period
		f(&p)
		s.Period = &p
		return s
	}
	for _, tc := range []struct {
		name string
		spec ScalingScheduleSpec
		want []string // every message, in order
	}{
		{"unknown time zone", specW(-1, good, withPeriod(func(p *SchedulePeriod) { p.Timezone = "Mars/Olympus" })),
			[]string{`spec.schedules[1].period.timezone: "Mars/Olympus": unknown time zone`}},
		{"Local time zone", specW(-1, withPeriod(func(p *SchedulePeriod) { p.Timezone = "Local" })),
			[]string{`spec.schedules[0].period.timezone: "Local": unknown time zone`}},
		{"path in time zone", specW(-1, withPeriod(func(p *SchedulePeriod) { p.Timezone = "../../etc/passwd" })),
			[]string{`spec.schedules[0].period.timezone: "../../etc/passwd": unknown time zone`}},
		{"bad day", specW(-1, withPeriod(func(p *SchedulePeriod) { p.Days = []ScheduleDay{"Mon", "Monday", "sun"} })),
			[]string{
				`spec.schedules[0].period.days[1]: "Monday": not one of Sun, Mon, Tue, Wed, Thu, Fri, Sat`,
				`spec.schedules[0].period.days[2]: "sun": not one of Sun, Mon, Tue, Wed, Thu, Fri, Sat`,
			}},
		{"no days", specW(-1, withPeriod(func(p *SchedulePeriod) { p.Days = nil })),
			[]string{`spec.schedules[0].period.days: at least one day (Sun, Mon, Tue, Wed, Thu, Fri, Sat) is required`}},
		{"bad startTime", specW(-1, withPeriod(func(p *SchedulePeriod) { p.StartTime = "24:00" })),
			[]string{`spec.schedules[0].period.startTime: "24:00": not a time of day HH:MM (00:00 to 23:59)`}},
		{"short startTime", specW(-1, withPeriod(func(p *SchedulePeriod) { p.StartTime = "9:00" })),
			[]string{`spec.schedules[0].period.startTime: "9:00": not a time of day HH:MM (00:00 to 23:59)`}},
		{"no startTime", specW(-1, withPeriod(func(p *SchedulePeriod) { p.StartTime = "" })),
			[]string{`spec.schedules[0].period.startTime: required (HH:MM)`}},
		{"bad endTime", specW(-1, withPeriod(func(p *SchedulePeriod) { p.EndTime = "10:60" })),
			[]string{`spec.schedules[0].period.endTime: "10:60": not a time of day HH:MM (00:00 to 23:59)`}},
		{"endTime equal to startTime", specW(-1, withPeriod(func(p *SchedulePeriod) { p.EndTime = "09:00" })),
			[]string{`spec.schedules[0].period.endTime: "09:00": equals startTime and durationMinutes is 0, so the schedule is empty (for a whole day use durationMinutes: 1440)`}},
		{"neither endTime nor duration", specW(-1, withPeriod(func(p *SchedulePeriod) { p.EndTime = "" })),
			[]string{`spec.schedules[0]: a Repeating schedule needs period.endTime or durationMinutes (or both: the later end wins)`}},
		{"no period", specW(-1, Schedule{Type: RepeatingSchedule, DurationMinutes: 5, Value: 1}),
			[]string{`spec.schedules[0].period: required for a Repeating schedule`}},
		{"date on Repeating", specW(-1, func() Schedule { s := good; s.Date = date("2026-01-01T00:00:00Z"); return s }()),
			[]string{`spec.schedules[0].date: "2026-01-01T00:00:00Z": only for OneTime schedules (this one is Repeating)`}},
		{"endDate on Repeating", specW(-1, func() Schedule { s := good; s.EndDate = date("2026-01-01T00:00:00Z"); return s }()),
			[]string{`spec.schedules[0].endDate: "2026-01-01T00:00:00Z": only for OneTime schedules (this one is Repeating)`}},
		{"bad date", specW(-1, oneTime("2021-10-02 08:08:08", "", 30, 1)),
			[]string{`spec.schedules[0].date: "2021-10-02 08:08:08": not an RFC 3339 date-time (like 2021-10-02T08:08:08+02:00)`}},
		{"date without offset", specW(-1, oneTime("2021-10-02T08:08:08", "", 30, 1)),
			[]string{`spec.schedules[0].date: "2021-10-02T08:08:08": not an RFC 3339 date-time (like 2021-10-02T08:08:08+02:00)`}},
		{"bad endDate", specW(-1, oneTime("2021-10-02T08:08:08Z", "tomorrow", 0, 1)),
			[]string{`spec.schedules[0].endDate: "tomorrow": not an RFC 3339 date-time (like 2021-10-02T08:08:08+02:00)`}},
		{"no date", specW(-1, Schedule{Type: OneTimeSchedule, DurationMinutes: 5, Value: 1}),
			[]string{`spec.schedules[0].date: required for a OneTime schedule`}},
		{"neither endDate nor duration", specW(-1, oneTime("2021-10-02T08:08:08Z", "", 0, 1)),
			[]string{`spec.schedules[0]: a OneTime schedule needs endDate or durationMinutes (or both: the later end wins)`}},
		{"empty endDate is none", specW(-1, func() Schedule { s := oneTime("2021-10-02T08:08:08Z", "", 0, 1); s.EndDate = date(""); return s }()),
			[]string{`spec.schedules[0]: a OneTime schedule needs endDate or durationMinutes (or both: the later end wins)`}},
		{"endDate before date", specW(-1, oneTime("2021-10-02T08:08:08Z", "2021-10-02T08:08:07Z", 30, 1)),
			[]string{`spec.schedules[0].endDate: "2021-10-02T08:08:07Z": before date "2021-10-02T08:08:08Z"`}},
		{"endDate equal to date", specW(-1, oneTime("2021-10-02T08:08:08Z", "2021-10-02T10:08:08+02:00", 0, 1)),
			[]string{`spec.schedules[0].endDate: "2021-10-02T10:08:08+02:00": equals date and durationMinutes is 0, so the schedule is empty`}},
		{"period on OneTime", specW(-1, func() Schedule { s := oneTime("2021-10-02T08:08:08Z", "", 5, 1); s.Period = good.Period; return s }()),
			[]string{`spec.schedules[0].period: only for Repeating schedules (this one is OneTime)`}},
		{"negative value", specW(-1, oneTime("2021-10-02T08:08:08Z", "", 5, -1)),
			[]string{`spec.schedules[0].value: -1: must not be negative`}},
		{"negative duration", specW(-1, oneTime("2021-10-02T08:08:08Z", "", -5, 1)),
			[]string{`spec.schedules[0].durationMinutes: -5: must not be negative`}},
		{"huge duration", specW(-1, oneTime("2021-10-02T08:08:08Z", "", 1<<40, 1)),
			[]string{`spec.schedules[0].durationMinutes: 1099511627776: must be at most 52560000 (100 years)`}},
		{"no type", specW(-1, Schedule{DurationMinutes: 5, Value: 1}),
			[]string{`spec.schedules[0].type: required (OneTime or Repeating)`}},
		{"bad type", specW(-1, Schedule{Type: "Weekly", DurationMinutes: 5, Value: 1}),
			[]string{`spec.schedules[0].type: "Weekly": must be OneTime or Repeating`}},
		{"no schedules", specW(-1),
			[]string{`spec.schedules: at least one schedule is required`}},
		{"several problems, all reported", specW(-1,
			withPeriod(func(p *SchedulePeriod) { p.Timezone = "Nowhere"; p.StartTime = "7am" }),
			oneTime("yesterday", "", -1, -2)),
			[]string{
				`spec.schedules[0].period.startTime: "7am": not a time of day HH:MM (00:00 to 23:59)`,
				`spec.schedules[0].period.timezone: "Nowhere": unknown time zone`,
				`spec.schedules[1].value: -2: must not be negative`,
				`spec.schedules[1].durationMinutes: -1: must not be negative`,
				`spec.schedules[1].date: "yesterday": not an RFC 3339 date-time (like 2021-10-02T08:08:08+02:00)`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, tc.spec, tc.want)
		})
	}
	t.Run("window", func(t *testing.T) {
		spec := specW(-1, good)
		spec.ScalingWindowDurationMinutes = ptr(int64(-3))
		checkErrors(t, spec, []string{`spec.scalingWindowDurationMinutes: -3: must not be negative`})
		spec.ScalingWindowDurationMinutes = ptr(int64(maxMinutes + 1))
		checkErrors(t, spec, []string{`spec.scalingWindowDurationMinutes: 52560001: must be at most 52560000 (100 years)`})
	})
}

func checkErrors(t *testing.T, spec ScalingScheduleSpec, want []string) {
	t.Helper()
	err := Validate(spec)
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	var fe *FieldError
	if !errors.As(err, &fe) || !strings.HasPrefix(want[0], fe.Field+": ") {
		t.Errorf("errors.As: %v", fe)
	}
	v, active, err2 := Value(spec, time.Now(), Options{RampSteps: 1})
	if err2 == nil || err2.Error() != err.Error() || v != 0 || active {
		t.Errorf("Value: %d %v %v, want Validate's error", v, active, err2)
	}
}

func TestValidSpecs(t *testing.T) {
	for _, s := range []Schedule{
		oneTime("2021-10-02T08:08:08+02:00", "", 30, 100),
		oneTime("2021-10-02T08:08:08.5Z", "2021-10-03T08:08:08-05:00", 0, 0),
		oneTime("2021-10-02T08:08:08Z", "2021-10-02T08:08:08Z", 1, 0), // equal, but a duration
		repeating("00:00", "23:59", 0, 1, "", SundaySchedule, SundaySchedule),
		repeating("23:59", "00:00", 0, 1, "Europe/Berlin", SaturdaySchedule),
		repeating("12:00", "12:00", 1440, 1, "UTC", MondaySchedule),
		repeating("12:00", "", 1, 1, "Etc/GMT+5", MondaySchedule),
	} {
		if err := Validate(specW(-1, s)); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
}

func TestOptions(t *testing.T) {
	o, err := NewOptions(DefaultScalingWindow, DefaultRampSteps, DefaultTimeZone)
	if err != nil || o.DefaultScalingWindow != 10*time.Minute || o.RampSteps != 10 || o.DefaultTimeZone.String() != "Europe/Berlin" {
		t.Errorf("defaults: %+v %v", o, err)
	}
	for _, tc := range []struct {
		window time.Duration
		steps  int
		zone   string
		want   string
	}{
		{-time.Minute, 10, "UTC", `--scaling-schedule-default-scaling-window: -1m0s: must not be negative`},
		{101 * 365 * 24 * time.Hour, 10, "UTC", `--scaling-schedule-default-scaling-window: 884760h0m0s: must be at most 100 years`},
		{0, 0, "UTC", `--scaling-schedule-ramp-steps: 0: must be at least 1`},
		{0, 10, "Mars/Olympus", `--scaling-schedule-default-time-zone: "Mars/Olympus": unknown time zone`},
		{0, 10, "", `--scaling-schedule-default-time-zone: "": unknown time zone`},
	} {
		_, err := NewOptions(tc.window, tc.steps, tc.zone)
		if err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %s", err, tc.want)
		}
	}
	// Evaluate checks the options too.
	if _, err := Evaluate(specW(-1, oneTime("2021-10-02T08:08:08Z", "", 5, 1)), time.Now(), Options{}); err == nil || !strings.Contains(err.Error(), "ramp-steps") {
		t.Errorf("zero Options: %v", err)
	}
}
