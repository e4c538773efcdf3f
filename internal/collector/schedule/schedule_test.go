package schedule

import (
	"encoding/json"
	"testing"
	"time"
)

// The README's example: a OneTime and a Repeating schedule.
func TestREADMEExample(t *testing.T) {
	const js = `{
	  "schedules": [
	    {"type": "OneTime", "date": "2021-10-02T08:08:08+02:00", "durationMinutes": 30, "value": 100},
	    {"type": "Repeating", "durationMinutes": 10, "value": 120,
	     "period": {"startTime": "15:45", "timezone": "Europe/Berlin", "days": ["Mon", "Wed", "Fri"]}}
	  ]
	}`
	var spec ScalingScheduleSpec
	if err := json.Unmarshal([]byte(js), &spec); err != nil {
		t.Fatal(err)
	}
	if err := Validate(spec); err != nil {
		t.Fatal(err)
	}
	noRamp := options(t, 0, 10, "UTC")
	checkPoints(t, spec, noRamp, []point{
		{"2021-10-02T06:08:07Z", 0, false},
		{"2021-10-02T06:08:08Z", 100, true},
		{"2021-10-02T08:38:07+02:00", 100, true},
		{"2021-10-02T08:38:08+02:00", 0, false},
		// Monday 2021-10-04, 15:45 in Berlin (CEST) is 13:45Z.
		{"2021-10-04T13:44:59Z", 0, false},
		{"2021-10-04T13:45:00Z", 120, true},
		{"2021-10-04T13:54:59Z", 120, true},
		{"2021-10-04T13:55:00Z", 0, false},
		{"2021-10-05T13:50:00Z", 0, false}, // Tuesday
		{"2021-10-06T13:50:00Z", 120, true},
		{"2021-10-08T13:50:00Z", 120, true},
		// In winter (CET) 15:45 is 14:45Z.
		{"2021-12-06T13:50:00Z", 0, false},
		{"2021-12-06T14:50:00Z", 120, true},
	})
	// With the default 10-minute window, 10 steps.
	checkPoints(t, spec, options(t, DefaultScalingWindow, DefaultRampSteps, DefaultTimeZone), []point{
		{"2021-10-04T13:34:59Z", 0, false},
		{"2021-10-04T13:35:00Z", 0, true},
		{"2021-10-04T13:40:00Z", 60, true},
		{"2021-10-04T13:55:00Z", 120, true},
		{"2021-10-04T14:00:00Z", 60, true},
		{"2021-10-04T14:05:00Z", 0, false},
	})
	// And back to JSON with the same field names.
	out, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var again ScalingScheduleSpec
	if err := json.Unmarshal(out, &again); err != nil {
		t.Fatal(err)
	}
	if string(mustJSON(t, again)) != string(out) {
		t.Errorf("round trip changed %s", out)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJSONFieldNames(t *testing.T) {
	spec := ScalingScheduleSpec{
		ScalingWindowDurationMinutes: ptr(int64(5)),
		Schedules: []Schedule{
			oneTime("2021-10-02T08:08:08+02:00", "2021-10-02T09:08:08+02:00", 30, 100),
			repeating("22:00", "02:00", 0, 7, "Europe/Berlin", FridaySchedule),
		},
	}
	got := string(mustJSON(t, spec))
	want := `{"scalingWindowDurationMinutes":5,"schedules":[` +
		`{"type":"OneTime","date":"2021-10-02T08:08:08+02:00","endDate":"2021-10-02T09:08:08+02:00","durationMinutes":30,"value":100},` +
		`{"type":"Repeating","period":{"startTime":"22:00","endTime":"02:00","days":["Fri"],"timezone":"Europe/Berlin"},"durationMinutes":0,"value":7}]}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if s := string(mustJSON(t, ScalingScheduleStatus{})); s != `{"active":false}` {
		t.Errorf("status: %s", s)
	}
}

func TestOneTime(t *testing.T) {
	noRamp := options(t, 0, 10, "UTC")
	for _, tc := range []struct {
		name   string
		s      Schedule
		points []point
	}{
		{"duration", oneTime("2026-01-10T12:00:00Z", "", 60, 5), []point{
			{"2026-01-10T11:59:59Z", 0, false},
			{"2026-01-10T12:00:00Z", 5, true},
			{"2026-01-10T12:59:59.999Z", 5, true},
			{"2026-01-10T13:00:00Z", 0, false},
		}},
		{"endDate", oneTime("2026-01-10T12:00:00+01:00", "2026-01-10T14:00:00+01:00", 0, 5), []point{
			{"2026-01-10T10:59:59Z", 0, false},
			{"2026-01-10T11:00:00Z", 5, true},
			{"2026-01-10T12:59:59Z", 5, true},
			{"2026-01-10T13:00:00Z", 0, false},
		}},
		{"both, endDate later", oneTime("2026-01-10T12:00:00Z", "2026-01-10T14:00:00Z", 60, 5), []point{
			{"2026-01-10T13:30:00Z", 5, true},
			{"2026-01-10T14:00:00Z", 0, false},
		}},
		{"both, duration later", oneTime("2026-01-10T12:00:00Z", "2026-01-10T12:30:00Z", 60, 5), []point{
			{"2026-01-10T12:45:00Z", 5, true},
			{"2026-01-10T13:00:00Z", 0, false},
		}},
		{"value 0 is active", oneTime("2026-01-10T12:00:00Z", "", 60, 0), []point{
			{"2026-01-10T12:30:00Z", 0, true},
		}},
		{"spans days and a DST change", oneTime("2026-03-28T12:00:00+01:00", "2026-03-30T12:00:00+02:00", 0, 9), []point{
			{"2026-03-29T12:00:00Z", 9, true},
			{"2026-03-30T09:59:59Z", 9, true},
			{"2026-03-30T10:00:00Z", 0, false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkPoints(t, specW(-1, tc.s), noRamp, tc.points)
		})
	}
}

func TestRamps(t *testing.T) {
	s := oneTime("2026-01-10T12:00:00Z", "2026-01-10T13:00:00Z", 0, 100)
	for _, tc := range []struct {
		name   string
		spec   ScalingScheduleSpec
		opts   Options
		points []point
	}{
		{"default window, 10 steps", specW(-1, s), options(t, 10*time.Minute, 10, "UTC"), []point{
			{"2026-01-10T11:49:59Z", 0, false},
			{"2026-01-10T11:50:00Z", 0, true}, // first step: active, worth 0
			{"2026-01-10T11:50:59Z", 0, true},
			{"2026-01-10T11:51:00Z", 10, true},
			{"2026-01-10T11:55:30Z", 50, true},
			{"2026-01-10T11:59:59.999Z", 90, true},
			{"2026-01-10T12:00:00Z", 100, true},
			{"2026-01-10T12:59:59Z", 100, true},
			{"2026-01-10T13:00:00Z", 100, true}, // ramp down starts at the full value
			{"2026-01-10T13:00:00.001Z", 90, true},
			{"2026-01-10T13:01:00Z", 90, true},
			{"2026-01-10T13:01:00.001Z", 80, true},
			{"2026-01-10T13:05:00Z", 50, true},
			{"2026-01-10T13:09:59Z", 0, true},
			{"2026-01-10T13:10:00Z", 0, false},
		}},
		{"4 steps", specW(-1, s), options(t, 10*time.Minute, 4, "UTC"), []point{
			{"2026-01-10T11:52:29Z", 0, true},
			{"2026-01-10T11:52:30Z", 25, true},
			{"2026-01-10T11:57:30Z", 75, true},
			{"2026-01-10T13:02:30Z", 75, true},
			{"2026-01-10T13:02:31Z", 50, true},
		}},
		{"1 step: window without value", specW(-1, s), options(t, 10*time.Minute, 1, "UTC"), []point{
			{"2026-01-10T11:59:59Z", 0, true},
			{"2026-01-10T12:00:00Z", 100, true},
			{"2026-01-10T13:00:01Z", 0, true},
		}},
		{"spec window overrides the default", specW(20, s), options(t, 10*time.Minute, 10, "UTC"), []point{
			{"2026-01-10T11:39:59Z", 0, false},
			{"2026-01-10T11:40:00Z", 0, true},
			{"2026-01-10T11:50:00Z", 50, true},
			{"2026-01-10T13:18:00Z", 10, true},
			{"2026-01-10T13:20:00Z", 0, false},
		}},
		{"spec window 0 disables ramps", specW(0, s), options(t, 10*time.Minute, 10, "UTC"), []point{
			{"2026-01-10T11:59:59Z", 0, false},
			{"2026-01-10T12:00:00Z", 100, true},
			{"2026-01-10T13:00:00Z", 0, false},
		}},
		{"steps floor the value", specW(-1, oneTime("2026-01-10T12:00:00Z", "", 60, 15)), options(t, 10*time.Minute, 10, "UTC"), []point{
			{"2026-01-10T11:55:00Z", 7, true}, // 5 steps of 1.5
			{"2026-01-10T11:59:00Z", 13, true},
		}},
		{"huge value, no overflow", specW(-1, oneTime("2026-01-10T12:00:00Z", "", 60, 1<<62)), options(t, 10*time.Minute, 10, "UTC"), []point{
			{"2026-01-10T11:55:00Z", (1 << 62) / 2, true},
			{"2026-01-10T11:59:00Z", 4150517416584649113, true}, // floor(9·2^62/10)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkPoints(t, tc.spec, tc.opts, tc.points) })
	}
}

func TestHugeWindow(t *testing.T) {
	start := at("2026-01-10T12:00:00Z")
	spec := specW(maxMinutes, oneTime("2026-01-10T12:00:00Z", "", 60, 100))
	w := time.Duration(maxMinutes) * time.Minute
	opts := options(t, 0, 1000000, "UTC")
	for _, tc := range []struct {
		at     time.Time
		value  int64
		active bool
	}{
		{start.Add(-w - 1), 0, false},
		{start.Add(-w), 0, true},
		{start.Add(-w / 2), 50, true},
		{start.Add(-1), 99, true},
		{start.Add(time.Hour + w/2), 50, true},
		{start.Add(time.Hour + w), 0, false},
	} {
		v, active, err := Value(spec, tc.at, opts)
		if err != nil || v != tc.value || active != tc.active {
			t.Errorf("at %s: got %d %v %v, want %d %v", tc.at, v, active, err, tc.value, tc.active)
		}
	}
}

func TestOverlapsTakeTheMaximum(t *testing.T) {
	spec := specW(-1,
		oneTime("2026-01-10T12:00:00Z", "", 60, 100),
		oneTime("2026-01-10T12:30:00Z", "", 60, 200),
		repeating("12:50", "13:10", 0, 150, "UTC", SaturdaySchedule), // 2026-01-10 is a Saturday
	)
	opts := options(t, 10*time.Minute, 10, "UTC")
	for _, tc := range []struct {
		at        string
		value     int64
		activeMax int64
	}{
		{"2026-01-10T11:55:00Z", 50, 100},
		{"2026-01-10T12:15:00Z", 100, 100},   // only the first
		{"2026-01-10T12:25:00Z", 100, 200},   // the second ramps up to 100 (50 < 100)
		{"2026-01-10T12:29:00Z", 180, 200},   // the second's ramp is above the first
		{"2026-01-10T12:45:00Z", 200, 200},   // the third ramps up (50) under both
		{"2026-01-10T13:05:00Z", 200, 200},   // the first ramps down (50), the third is 150
		{"2026-01-10T13:35:00Z", 100, 200},   // the second ramps down (100), the third too (75)
		{"2026-01-10T13:15:00Z", 200, 200},   // only the second and the ramps
		{"2026-01-10T13:40:00Z", 0, 0},       // all over
		{"2026-01-17T13:00:00Z", 150, 150},   // the next Saturday, only the third
		{"2026-01-17T13:14:00Z", 90, 150},    // its ramp down
		{"2026-01-16T13:00:00Z", 0, 0},       // Friday
		{"2026-01-10T13:39:59.999Z", 0, 200}, // the second's last ramp step
	} {
		r, err := Evaluate(spec, at(tc.at), opts)
		if err != nil {
			t.Fatal(err)
		}
		if r.Value != tc.value || r.ActiveMax != tc.activeMax || r.Active != (tc.activeMax > 0) {
			t.Errorf("at %s: got %+v, want value %d activeMax %d", tc.at, r, tc.value, tc.activeMax)
		}
	}
}

// 2026-11-27 is a Friday.
func TestRepeatingAcrossMidnight(t *testing.T) {
	noRamp := options(t, 0, 10, "UTC")
	ramp := options(t, 10*time.Minute, 10, "UTC")
	for _, tc := range []struct {
		name   string
		s      Schedule
		opts   Options
		points []point
	}{
		{"endTime before startTime", repeating("22:00", "02:00", 0, 100, "Europe/Berlin", FridaySchedule), noRamp, []point{
			{"2026-11-26T23:00:00+01:00", 0, false}, // Thursday night
			{"2026-11-27T21:59:59+01:00", 0, false},
			{"2026-11-27T22:00:00+01:00", 100, true},
			{"2026-11-28T00:00:00+01:00", 100, true},
			{"2026-11-28T01:00:00+01:00", 100, true}, // Saturday, not in days: the Friday's tail
			{"2026-11-28T01:59:59+01:00", 100, true},
			{"2026-11-28T02:00:00+01:00", 0, false},
			{"2026-11-28T22:30:00+01:00", 0, false}, // Saturday night
			{"2026-11-29T01:00:00+01:00", 0, false},
		}},
		{"endTime 00:00 is the midnight ending the day", repeating("22:00", "00:00", 0, 100, "Europe/Berlin", FridaySchedule), noRamp, []point{
			{"2026-11-27T23:59:59+01:00", 100, true},
			{"2026-11-28T00:00:00+01:00", 0, false},
		}},
		{"duration past midnight", repeating("23:00", "", 180, 100, "Europe/Berlin", FridaySchedule), noRamp, []point{
			{"2026-11-28T01:59:59+01:00", 100, true},
			{"2026-11-28T02:00:00+01:00", 0, false},
		}},
		{"endTime past midnight on consecutive days", repeating("22:00", "02:00", 0, 100, "Europe/Berlin", FridaySchedule, SaturdaySchedule), noRamp, []point{
			{"2026-11-28T01:00:00+01:00", 100, true},
			{"2026-11-28T12:00:00+01:00", 0, false},
			{"2026-11-29T01:00:00+01:00", 100, true}, // Sunday: the Saturday's tail
			{"2026-11-30T01:00:00+01:00", 0, false},
		}},
		{"several days", repeating("09:00", "", 3*24*60, 100, "UTC", MondaySchedule), noRamp, []point{
			{"2026-11-30T08:59:00Z", 0, false},
			{"2026-12-02T12:00:00Z", 100, true},
			{"2026-12-03T08:59:59Z", 100, true},
			{"2026-12-03T09:00:00Z", 0, false},
		}},
		{"longer than a week: always on", repeating("09:00", "", 8*24*60, 100, "UTC", MondaySchedule), noRamp, []point{
			{"2026-11-29T09:00:00Z", 100, true},
			{"2026-12-06T23:00:00Z", 100, true},
		}},
		{"ramp up from the day before", repeating("00:05", "01:00", 0, 100, "UTC", SaturdaySchedule), ramp, []point{
			{"2026-11-27T23:54:59Z", 0, false},
			{"2026-11-27T23:57:00Z", 20, true},
			{"2026-11-28T00:04:00Z", 90, true},
		}},
		{"ramp down into the next day", repeating("22:00", "23:55", 0, 100, "UTC", FridaySchedule), ramp, []point{
			{"2026-11-28T00:00:00Z", 50, true},
			{"2026-11-28T00:05:00Z", 0, false},
		}},
		{"ramp down of one day meets the ramp up of the next", repeating("12:00", "23:00", 0, 100, "UTC", FridaySchedule, SaturdaySchedule), options(t, 10*time.Hour, 10, "UTC"), []point{
			{"2026-11-28T04:00:00Z", 50, true}, // down from Friday 23:00 (5 steps left), up to 12:00 (2 steps)
			{"2026-11-28T06:00:00Z", 40, true}, // down 3 steps left, up 4 steps
			{"2026-11-28T09:00:00Z", 70, true}, // down over, up 7 steps
		}},
		{"endTime and duration: the later wins", repeating("10:00", "11:00", 90, 100, "UTC", FridaySchedule), noRamp, []point{
			{"2026-11-27T11:29:59Z", 100, true},
			{"2026-11-27T11:30:00Z", 0, false},
		}},
		{"endTime and duration: the later wins (endTime)", repeating("10:00", "12:00", 30, 100, "UTC", FridaySchedule), noRamp, []point{
			{"2026-11-27T11:59:59Z", 100, true},
			{"2026-11-27T12:00:00Z", 0, false},
		}},
		{"endTime equal to startTime: the duration decides", repeating("10:00", "10:00", 30, 100, "UTC", FridaySchedule), noRamp, []point{
			{"2026-11-27T10:29:59Z", 100, true},
			{"2026-11-27T10:30:00Z", 0, false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkPoints(t, specW(-1, tc.s), tc.opts, tc.points) })
	}
}

func TestDefaultTimeZone(t *testing.T) {
	spec := specW(0, repeating("09:00", "10:00", 0, 100, "", MondaySchedule))
	checkPoints(t, spec, options(t, 0, 10, "Europe/Berlin"), []point{
		{"2026-11-30T08:30:00Z", 100, true},
		{"2026-11-30T09:30:00Z", 0, false},
	})
	checkPoints(t, spec, options(t, 0, 10, "America/New_York"), []point{
		{"2026-11-30T08:30:00Z", 0, false},
		{"2026-11-30T14:30:00Z", 100, true},
	})
	checkPoints(t, spec, Options{RampSteps: 1}, []point{ // nil: UTC
		{"2026-11-30T09:30:00Z", 100, true},
	})
	// A zone of its own wins over the default.
	checkPoints(t, specW(0, repeating("09:00", "10:00", 0, 100, "Asia/Tokyo", MondaySchedule)), options(t, 0, 10, "Europe/Berlin"), []point{
		{"2026-11-30T00:30:00Z", 100, true},
	})
}

// Europe/Berlin 2026: the clocks go from 02:00 to 03:00 on 29 March (01:00Z)
// and from 03:00 back to 02:00 on 25 October (01:00Z). America/New_York 2026:
// 02:00 to 03:00 on 8 March (07:00Z), 02:00 back to 01:00 on 1 November
// (06:00Z).
func TestDST(t *testing.T) {
	noRamp := options(t, 0, 10, "UTC")
	for _, tc := range []struct {
		name   string
		s      Schedule
		opts   Options
		points []point
	}{
		{"Berlin spring: a skipped start is the change", repeating("02:30", "", 60, 100, "Europe/Berlin", SundaySchedule), noRamp, []point{
			{"2026-03-22T01:30:00Z", 100, true}, // the Sunday before: 02:30 CET
			{"2026-03-29T00:59:59Z", 0, false},
			{"2026-03-29T01:00:00Z", 100, true}, // 03:00 CEST
			{"2026-03-29T01:59:59Z", 100, true},
			{"2026-03-29T02:00:00Z", 0, false},
			{"2026-04-05T00:30:00Z", 100, true}, // the Sunday after: 02:30 CEST
		}},
		{"Berlin spring: a skipped end is the change", repeating("01:00", "02:30", 0, 100, "Europe/Berlin", SundaySchedule), noRamp, []point{
			{"2026-03-29T00:00:00Z", 100, true},
			{"2026-03-29T00:59:59Z", 100, true},
			{"2026-03-29T01:00:00Z", 0, false},
		}},
		{"Berlin spring: a period inside the gap is empty", repeating("02:15", "02:45", 0, 100, "Europe/Berlin", SundaySchedule), noRamp, []point{
			{"2026-03-29T00:59:59Z", 0, false},
			{"2026-03-29T01:00:00Z", 0, false},
			{"2026-03-22T01:20:00Z", 100, true},
		}},
		{"Berlin spring: ramps around an empty period remain", repeating("02:15", "02:45", 0, 100, "Europe/Berlin", SundaySchedule), options(t, 10*time.Minute, 10, "UTC"), []point{
			{"2026-03-29T00:55:00Z", 50, true},
			{"2026-03-29T01:00:00Z", 100, true},
			{"2026-03-29T01:05:00Z", 50, true},
			{"2026-03-29T01:10:00Z", 0, false},
		}},
		{"Berlin spring: duration is elapsed time", repeating("01:00", "", 180, 100, "Europe/Berlin", SundaySchedule), noRamp, []point{
			{"2026-03-29T02:59:59Z", 100, true}, // 04:59:59 CEST
			{"2026-03-29T03:00:00Z", 0, false},
		}},
		{"Berlin spring: endTime is on the clock", repeating("01:00", "04:00", 0, 100, "Europe/Berlin", SundaySchedule), noRamp, []point{
			{"2026-03-29T01:59:59Z", 100, true}, // 03:59:59 CEST
			{"2026-03-29T02:00:00Z", 0, false},
		}},
		{"Berlin autumn: the repeated hour is in", repeating("01:00", "03:00", 0, 100, "Europe/Berlin", SundaySchedule), noRamp, []point{
			{"2026-10-24T22:59:59Z", 0, false},
			{"2026-10-24T23:00:00Z", 100, true}, // 01:00 CEST
			{"2026-10-25T00:30:00Z", 100, true}, // 02:30 CEST
			{"2026-10-25T01:30:00Z", 100, true}, // 02:30 CET
			{"2026-10-25T01:59:59Z", 100, true},
			{"2026-10-25T02:00:00Z", 0, false}, // 03:00 CET: three hours
		}},
		{"Berlin autumn: a repeated start is its first showing", repeating("02:30", "", 30, 100, "Europe/Berlin", SundaySchedule), noRamp, []point{
			{"2026-10-25T00:29:59Z", 0, false},
			{"2026-10-25T00:30:00Z", 100, true},
			{"2026-10-25T00:59:59Z", 100, true},
			{"2026-10-25T01:00:00Z", 0, false},
			{"2026-10-25T01:30:00Z", 0, false}, // the second 02:30
		}},
		{"Berlin autumn: a repeated end is its first showing", repeating("01:00", "02:30", 0, 100, "Europe/Berlin", SundaySchedule), noRamp, []point{
			{"2026-10-25T00:29:59Z", 100, true},
			{"2026-10-25T00:30:00Z", 0, false},
			{"2026-10-25T01:15:00Z", 0, false}, // 02:15 CET
		}},
		{"Berlin autumn: a period across midnight", repeating("22:00", "02:00", 0, 100, "Europe/Berlin", SaturdaySchedule), noRamp, []point{
			{"2026-10-24T19:59:59Z", 0, false},
			{"2026-10-24T20:00:00Z", 100, true}, // 22:00 CEST
			{"2026-10-24T23:59:59Z", 100, true},
			{"2026-10-25T00:00:00Z", 0, false}, // the first 02:00 (CEST) ends it
			{"2026-10-25T00:30:00Z", 0, false},
		}},
		{"Berlin autumn: duration is elapsed time", repeating("01:00", "", 180, 100, "Europe/Berlin", SundaySchedule), noRamp, []point{
			{"2026-10-25T01:59:59Z", 100, true}, // 02:59:59 CET
			{"2026-10-25T02:00:00Z", 0, false},
		}},
		{"New York spring: a skipped start is the change", repeating("02:30", "04:00", 0, 100, "America/New_York", SundaySchedule), noRamp, []point{
			{"2026-03-08T06:59:59Z", 0, false},
			{"2026-03-08T07:00:00Z", 100, true}, // 03:00 EDT
			{"2026-03-08T07:59:59Z", 100, true},
			{"2026-03-08T08:00:00Z", 0, false},  // 04:00 EDT
			{"2026-03-01T07:30:00Z", 100, true}, // the Sunday before: 02:30 EST
		}},
		{"New York autumn: a repeated start is its first showing", repeating("01:30", "", 30, 100, "America/New_York", SundaySchedule), noRamp, []point{
			{"2026-11-01T05:29:59Z", 0, false},
			{"2026-11-01T05:30:00Z", 100, true}, // 01:30 EDT
			{"2026-11-01T05:59:59Z", 100, true},
			{"2026-11-01T06:00:00Z", 0, false},
			{"2026-11-01T06:30:00Z", 0, false}, // 01:30 EST
		}},
		{"New York autumn: the repeated hour is in", repeating("00:30", "02:30", 0, 100, "America/New_York", SundaySchedule), noRamp, []point{
			{"2026-11-01T04:30:00Z", 100, true}, // 00:30 EDT
			{"2026-11-01T06:45:00Z", 100, true}, // 01:45 EST
			{"2026-11-01T07:29:59Z", 100, true},
			{"2026-11-01T07:30:00Z", 0, false}, // 02:30 EST: three hours
		}},
		{"New York: days follow the zone's calendar", repeating("21:00", "23:00", 0, 100, "America/New_York", SaturdaySchedule), noRamp, []point{
			{"2026-11-29T02:30:00Z", 100, true}, // Sunday in UTC, Saturday 21:30 EST
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkPoints(t, specW(-1, tc.s), tc.opts, tc.points) })
	}
}

func TestWallClock(t *testing.T) {
	for _, tc := range []struct {
		zone, day string
		minute    int
		want      string
	}{
		{"Europe/Berlin", "2026-03-29", 60, "2026-03-29T00:00:00Z"},
		{"Europe/Berlin", "2026-03-29", 120, "2026-03-29T01:00:00Z"}, // skipped: the change
		{"Europe/Berlin", "2026-03-29", 150, "2026-03-29T01:00:00Z"},
		{"Europe/Berlin", "2026-03-29", 179, "2026-03-29T01:00:00Z"},
		{"Europe/Berlin", "2026-03-29", 180, "2026-03-29T01:00:00Z"}, // 03:00 CEST
		{"Europe/Berlin", "2026-03-29", 181, "2026-03-29T01:01:00Z"},
		{"Europe/Berlin", "2026-10-25", 119, "2026-10-24T23:59:00Z"},
		{"Europe/Berlin", "2026-10-25", 120, "2026-10-25T00:00:00Z"}, // first 02:00 (CEST)
		{"Europe/Berlin", "2026-10-25", 179, "2026-10-25T00:59:00Z"},
		{"Europe/Berlin", "2026-10-25", 180, "2026-10-25T02:00:00Z"}, // 03:00 CET
		{"America/New_York", "2026-03-08", 150, "2026-03-08T07:00:00Z"},
		{"America/New_York", "2026-11-01", 90, "2026-11-01T05:30:00Z"},
		{"America/New_York", "2026-11-01", 120, "2026-11-01T07:00:00Z"},
		// São Paulo went from 00:00 to 01:00 on 4 November 2018: midnight
		// itself did not exist.
		{"America/Sao_Paulo", "2018-11-04", 0, "2018-11-04T03:00:00Z"},
		{"America/Sao_Paulo", "2018-11-04", 30, "2018-11-04T03:00:00Z"},
		{"America/Sao_Paulo", "2018-11-04", 60, "2018-11-04T03:00:00Z"},
		{"America/Sao_Paulo", "2018-11-03", 1439, "2018-11-04T02:59:00Z"},
		// Lord Howe Island shifts by half an hour: 02:00 to 02:30 on 4 October 2026.
		{"Australia/Lord_Howe", "2026-10-04", 135, "2026-10-03T15:30:00Z"},
		// Samoa skipped 30 December 2011 entirely.
		{"Pacific/Apia", "2011-12-30", 720, "2011-12-30T10:00:00Z"},
		{"UTC", "2026-03-29", 150, "2026-03-29T02:30:00Z"},
		{"Asia/Kolkata", "2026-03-29", 150, "2026-03-28T21:00:00Z"},
		{"Europe/Berlin", "2300-03-25", 150, "2300-03-25T01:00:00Z"}, // beyond the tables: the zone's rule
	} {
		day, err := time.Parse(time.DateOnly, tc.day)
		if err != nil {
			t.Fatal(err)
		}
		got := wallClock(day, tc.minute, loc(t, tc.zone))
		if !got.Equal(at(tc.want)) {
			t.Errorf("%s %s +%dm: got %s, want %s", tc.zone, tc.day, tc.minute, got.UTC().Format(time.RFC3339), tc.want)
		}
	}
}

// TestWallClockMonotonic walks every minute of days with changes and checks
// that later readings never give earlier instants, and that a reading that
// exists gives an instant the clocks show as that reading.
func TestWallClockMonotonic(t *testing.T) {
	for _, tc := range []struct{ zone, day string }{
		{"Europe/Berlin", "2026-03-29"}, {"Europe/Berlin", "2026-10-25"},
		{"America/New_York", "2026-03-08"}, {"America/New_York", "2026-11-01"},
		{"America/Sao_Paulo", "2018-11-04"}, {"America/Sao_Paulo", "2019-02-16"},
		{"Australia/Lord_Howe", "2026-04-05"}, {"Australia/Lord_Howe", "2026-10-04"},
		{"Pacific/Apia", "2011-12-29"}, {"Pacific/Apia", "2011-12-31"},
	} {
		l := loc(t, tc.zone)
		day, _ := time.Parse(time.DateOnly, tc.day)
		prev := time.Time{}
		for m := 0; m < 48*60; m++ {
			d := day.AddDate(0, 0, m/1440)
			got := wallClock(d, m%1440, l)
			if got.Before(prev) {
				t.Fatalf("%s %s +%dm: %s before %s", tc.zone, tc.day, m, got, prev)
			}
			prev = got
			if lt := got.In(l); lt.Hour()*60+lt.Minute() != m%1440 {
				// Only where the reading does not exist: the instant must be
				// a change of offset, and the reading before it earlier.
				_, offBefore := got.Add(-time.Nanosecond).In(l).Zone()
				_, offAt := got.In(l).Zone()
				wall := d.Add(time.Duration(m%1440) * time.Minute)
				inGap := !wall.Add(-time.Duration(offBefore)*time.Second).Before(got) &&
					wall.Add(-time.Duration(offAt)*time.Second).Before(got)
				if offBefore == offAt || !inGap {
					t.Errorf("%s %s +%dm gave %s, which is not the change skipping it", tc.zone, tc.day, m, lt)
				}
			}
		}
	}
}

func BenchmarkEvaluate(b *testing.B) {
	spec := specW(-1,
		oneTime("2021-10-02T08:08:08+02:00", "", 30, 100),
		repeating("15:45", "", 10, 120, "Europe/Berlin", MondaySchedule, WednesdaySchedule, FridaySchedule),
		repeating("22:00", "02:00", 0, 50, "America/New_York", FridaySchedule),
	)
	opts := options(b, DefaultScalingWindow, DefaultRampSteps, DefaultTimeZone)
	now := at("2026-11-30T13:40:00Z")
	for b.Loop() {
		if _, err := Evaluate(spec, now, opts); err != nil {
			b.Fatal(err)
		}
	}
}
