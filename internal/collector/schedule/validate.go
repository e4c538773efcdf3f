package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// maxMinutes bounds every length in minutes (durationMinutes,
// scalingWindowDurationMinutes): 100 years of 365 days. It keeps every
// computation on time.Duration and time.Time far from overflow.
const maxMinutes = 100 * 365 * 24 * 60

// FieldError is one invalid field of a ScalingScheduleSpec (or one invalid
// option). Its message names the field's path, the value as written and what
// is wrong, like
//
//	spec.schedules[1].period.timezone: "Mars/Olympus": unknown time zone
type FieldError struct {
	// Field is the path of the field, like spec.schedules[1].period.days[0],
	// or the flag, like --scaling-schedule-ramp-steps.
	Field string
	// Value is the field's value as written (strings quoted), or empty when
	// the error is about a missing field or the combination of fields.
	Value string
	// Detail says what is wrong.
	Detail string
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return e.Field + ": " + e.Detail
	}
	return e.Field + ": " + e.Value + ": " + e.Detail
}

// Validate checks every field of spec and returns nil, or all the problems
// found, each a *FieldError, joined with errors.Join (use errors.As to get
// the first one). Value calls it; a spec it rejects has no value.
func Validate(spec ScalingScheduleSpec) error {
	_, err := compile(spec)
	return err
}

// entry is one validated schedule.
type entry struct {
	value    int64
	duration time.Duration // durationMinutes

	// OneTime: the start and the effective end (the later of endDate and
	// start + duration).
	oneTime    bool
	start, end time.Time

	// Repeating.
	loc      *time.Location // nil: Options.DefaultTimeZone
	startMin int            // minutes after midnight
	endMin   int            // minutes after midnight, if hasEnd
	hasEnd   bool
	days     [7]bool // by time.Weekday
}

// compiled is a validated spec.
type compiled struct {
	window    time.Duration // scalingWindowDurationMinutes, if hasWindow
	hasWindow bool
	entries   []entry
}

var dayNames = map[ScheduleDay]time.Weekday{
	SundaySchedule:    time.Sunday,
	MondaySchedule:    time.Monday,
	TuesdaySchedule:   time.Tuesday,
	WednesdaySchedule: time.Wednesday,
	ThursdaySchedule:  time.Thursday,
	FridaySchedule:    time.Friday,
	SaturdaySchedule:  time.Saturday,
}

func compile(spec ScalingScheduleSpec) (compiled, error) {
	var (
		c    compiled
		errs []error
	)
	fail := func(field, value, detail string) {
		errs = append(errs, &FieldError{Field: field, Value: value, Detail: detail})
	}
	if w := spec.ScalingWindowDurationMinutes; w != nil {
		switch {
		case *w < 0:
			fail("spec.scalingWindowDurationMinutes", strconv.FormatInt(*w, 10), "must not be negative")
		case *w > maxMinutes:
			fail("spec.scalingWindowDurationMinutes", strconv.FormatInt(*w, 10), fmt.Sprintf("must be at most %d (100 years)", maxMinutes))
		default:
			c.window, c.hasWindow = time.Duration(*w)*time.Minute, true
		}
	}
	if len(spec.Schedules) == 0 {
		fail("spec.schedules", "", "at least one schedule is required")
	}
	for i, s := range spec.Schedules {
		p := fmt.Sprintf("spec.schedules[%d]", i)
		n := len(errs)
		e := entry{value: s.Value}
		if s.Value < 0 {
			fail(p+".value", strconv.FormatInt(s.Value, 10), "must not be negative")
		}
		switch {
		case s.DurationMinutes < 0:
			fail(p+".durationMinutes", strconv.Itoa(s.DurationMinutes), "must not be negative")
		case s.DurationMinutes > maxMinutes:
			fail(p+".durationMinutes", strconv.Itoa(s.DurationMinutes), fmt.Sprintf("must be at most %d (100 years)", maxMinutes))
		default:
			e.duration = time.Duration(s.DurationMinutes) * time.Minute
		}
		switch s.Type {
		case OneTimeSchedule:
			e.oneTime = true
			if s.Period != nil {
				fail(p+".period", "", "only for Repeating schedules (this one is OneTime)")
			}
			var startOK, endOK bool
			var end time.Time
			if s.Date == nil || *s.Date == "" {
				fail(p+".date", "", "required for a OneTime schedule")
			} else if t, err := parseDate(string(*s.Date)); err != nil {
				fail(p+".date", strconv.Quote(string(*s.Date)), err.Error())
			} else {
				e.start, startOK = t, true
			}
			hasEndDate := s.EndDate != nil && *s.EndDate != ""
			if hasEndDate {
				if t, err := parseDate(string(*s.EndDate)); err != nil {
					fail(p+".endDate", strconv.Quote(string(*s.EndDate)), err.Error())
				} else {
					end, endOK = t, true
				}
			}
			switch {
			case !hasEndDate && s.DurationMinutes == 0:
				fail(p, "", "a OneTime schedule needs endDate or durationMinutes (or both: the later end wins)")
			case startOK && endOK && end.Before(e.start):
				fail(p+".endDate", strconv.Quote(string(*s.EndDate)), "before date "+strconv.Quote(string(*s.Date)))
			case startOK && endOK && end.Equal(e.start) && s.DurationMinutes == 0:
				fail(p+".endDate", strconv.Quote(string(*s.EndDate)), "equals date and durationMinutes is 0, so the schedule is empty")
			}
			e.end = e.start.Add(e.duration)
			if endOK && end.After(e.end) {
				e.end = end
			}
		case RepeatingSchedule:
			if s.Date != nil && *s.Date != "" {
				fail(p+".date", strconv.Quote(string(*s.Date)), "only for OneTime schedules (this one is Repeating)")
			}
			if s.EndDate != nil && *s.EndDate != "" {
				fail(p+".endDate", strconv.Quote(string(*s.EndDate)), "only for OneTime schedules (this one is Repeating)")
			}
			if s.Period == nil {
				fail(p+".period", "", "required for a Repeating schedule")
				break
			}
			pp := p + ".period"
			var startOK bool
			if s.Period.StartTime == "" {
				fail(pp+".startTime", "", "required (HH:MM)")
			} else if m, ok := parseClock(s.Period.StartTime); !ok {
				fail(pp+".startTime", strconv.Quote(s.Period.StartTime), "not a time of day HH:MM (00:00 to 23:59)")
			} else {
				e.startMin, startOK = m, true
			}
			if s.Period.EndTime != "" {
				if m, ok := parseClock(s.Period.EndTime); !ok {
					fail(pp+".endTime", strconv.Quote(s.Period.EndTime), "not a time of day HH:MM (00:00 to 23:59)")
				} else {
					e.endMin, e.hasEnd = m, true
				}
			}
			if s.Period.EndTime == "" && s.DurationMinutes == 0 {
				fail(p, "", "a Repeating schedule needs period.endTime or durationMinutes (or both: the later end wins)")
			} else if startOK && e.hasEnd && e.endMin == e.startMin && s.DurationMinutes == 0 {
				fail(pp+".endTime", strconv.Quote(s.Period.EndTime), "equals startTime and durationMinutes is 0, so the schedule is empty (for a whole day use durationMinutes: 1440)")
			}
			if len(s.Period.Days) == 0 {
				fail(pp+".days", "", "at least one day (Sun, Mon, Tue, Wed, Thu, Fri, Sat) is required")
			}
			for j, d := range s.Period.Days {
				wd, ok := dayNames[d]
				if !ok {
					fail(fmt.Sprintf("%s.days[%d]", pp, j), strconv.Quote(string(d)), "not one of Sun, Mon, Tue, Wed, Thu, Fri, Sat")
					continue
				}
				e.days[wd] = true
			}
			if s.Period.Timezone != "" {
				loc, err := loadZone(s.Period.Timezone)
				if err != nil {
					fail(pp+".timezone", strconv.Quote(s.Period.Timezone), err.Error())
				}
				e.loc = loc
			}
		case "":
			fail(p+".type", "", "required (OneTime or Repeating)")
		default:
			fail(p+".type", strconv.Quote(string(s.Type)), "must be OneTime or Repeating")
		}
		if len(errs) == n {
			c.entries = append(c.entries, e)
		}
	}
	if len(errs) > 0 {
		return compiled{}, errors.Join(errs...)
	}
	return c, nil
}

// parseDate parses an RFC 3339 date-time, like 2021-10-02T08:08:08+02:00.
func parseDate(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errors.New("not an RFC 3339 date-time (like 2021-10-02T08:08:08+02:00)")
	}
	return t, nil
}

// parseClock parses HH:MM, 00:00 to 23:59, into minutes after midnight.
func parseClock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if h > 23 || m > 59 {
		return 0, false
	}
	return h*60 + m, true
}

// zones caches the locations loaded, by name: time.LoadLocation reads and
// parses the zone's data on every call. Only names that load are kept, so
// the cache is bounded by the IANA database.
var zones sync.Map

// loadZone loads an IANA time zone by name from the system's zone data or,
// failing that, the copy embedded with time/tzdata. "Local" (the machine's
// zone, which differs between machines) and "" are refused.
func loadZone(name string) (*time.Location, error) {
	if v, ok := zones.Load(name); ok {
		return v.(*time.Location), nil
	}
	if name == "" || name == "Local" {
		return nil, errors.New("unknown time zone")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, errors.New("unknown time zone")
	}
	zones.Store(name, loc)
	return loc, nil
}
