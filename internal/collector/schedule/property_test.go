package schedule

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// bruteForce is the value and activity of one Repeating schedule at now
// computed from every occurrence of the days around now, the definition that
// repeatingAround shortens to two occurrences.
func bruteForce(e *entry, now time.Time, loc *time.Location, window time.Duration, steps int) (int64, bool) {
	y, m, d := now.In(loc).Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	var v int64
	active := false
	for i := -12; i <= 12; i++ {
		day := today.AddDate(0, 0, i)
		if !e.days[day.Weekday()] {
			continue
		}
		s := wallClock(day, e.startMin, loc)
		end := e.repeatingEnd(day, s, loc)
		switch {
		case !now.Before(s) && now.Before(end):
			v, active = max(v, e.value), true
		case !now.Before(s.Add(-window)) && now.Before(s):
			v, active = max(v, ramp(now.Sub(s.Add(-window)), window, steps, e.value)), true
		case !now.Before(end) && now.Before(end.Add(window)):
			v, active = max(v, ramp(end.Add(window).Sub(now), window, steps, e.value)), true
		}
	}
	return v, active
}

func TestRepeatingAgainstBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	zones := []string{"Europe/Berlin", "America/New_York", "America/Sao_Paulo", "Australia/Lord_Howe", "Pacific/Apia", "UTC", "Asia/Tehran"}
	// Days with changes, and random days.
	anchors := []string{"2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z", "2026-03-08T07:00:00Z", "2026-11-01T06:00:00Z",
		"2018-11-04T03:00:00Z", "2019-02-17T02:00:00Z", "2011-12-30T10:00:00Z", "2026-10-03T15:30:00Z"}
	allDays := []ScheduleDay{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	for n := 0; n < 20000; n++ {
		var days []ScheduleDay
		for len(days) == 0 {
			for _, d := range allDays {
				if r.IntN(3) == 0 {
					days = append(days, d)
				}
			}
		}
		clock := func() string { return fmt.Sprintf("%02d:%02d", r.IntN(24), r.IntN(4)*15) }
		end := ""
		if r.IntN(2) == 0 {
			end = clock()
		}
		dur := 0
		if end == "" || r.IntN(2) == 0 {
			dur = 1 + r.IntN(3*24*60)
		}
		zone := zones[r.IntN(len(zones))]
		s := repeating(clock(), end, dur, r.Int64N(1000), zone, days...)
		window := int64(r.IntN(3)) * int64(r.IntN(24*60))
		spec := specW(window, s)
		c, err := compile(spec)
		if err != nil {
			if end == s.Period.StartTime && dur == 0 {
				continue // an empty period, rightly refused
			}
			t.Fatalf("%+v: %v", s, err)
		}
		var now time.Time
		if r.IntN(2) == 0 {
			now = at(anchors[r.IntN(len(anchors))]).Add(time.Duration(r.Int64N(int64(96*time.Hour))) - 48*time.Hour)
		} else {
			now = time.Unix(1262304000+r.Int64N(20*365*86400), 0)
		}
		steps := 1 + r.IntN(20)
		opts := Options{RampSteps: steps}
		gotV, gotA, err := Value(spec, now, opts)
		if err != nil {
			t.Fatal(err)
		}
		wantV, wantA := bruteForce(&c.entries[0], now, loc(t, zone), time.Duration(window)*time.Minute, steps)
		if gotV != wantV || gotA != wantA {
			t.Fatalf("%s window %dm steps %d %+v period %+v at %s: got %d %v, brute force %d %v",
				zone, window, steps, s, *s.Period, now.UTC().Format(time.RFC3339), gotV, gotA, wantV, wantA)
		}
	}
}
