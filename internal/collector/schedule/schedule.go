package schedule

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"time"
)

// The adapter's defaults for Options, those of the original's flags.
const (
	// DefaultScalingWindow is --scaling-schedule-default-scaling-window's
	// default.
	DefaultScalingWindow = 10 * time.Minute
	// DefaultRampSteps is --scaling-schedule-ramp-steps' default.
	DefaultRampSteps = 10
	// DefaultTimeZone is --scaling-schedule-default-time-zone's default.
	DefaultTimeZone = "Europe/Berlin"
)

// Options are the adapter-wide settings of the computation, the
// --scaling-schedule-* flags. Build them with NewOptions, which checks them.
type Options struct {
	// DefaultScalingWindow is the ramp length of a spec without
	// scalingWindowDurationMinutes (--scaling-schedule-default-scaling-window).
	// 0 disables the ramps of such specs.
	DefaultScalingWindow time.Duration
	// RampSteps is the number of steps of a ramp, at least 1
	// (--scaling-schedule-ramp-steps).
	RampSteps int
	// DefaultTimeZone is the zone of a Repeating schedule with an empty
	// period.timezone (--scaling-schedule-default-time-zone); nil means UTC.
	DefaultTimeZone *time.Location
}

// NewOptions returns the Options of the flags' values, or a *FieldError
// naming the flag that is wrong. NewOptions(DefaultScalingWindow,
// DefaultRampSteps, DefaultTimeZone) are the adapter's defaults.
func NewOptions(defaultScalingWindow time.Duration, rampSteps int, defaultTimeZone string) (Options, error) {
	o := Options{DefaultScalingWindow: defaultScalingWindow, RampSteps: rampSteps}
	loc, err := loadZone(defaultTimeZone)
	if err != nil {
		return Options{}, &FieldError{Field: "--scaling-schedule-default-time-zone", Value: strconv.Quote(defaultTimeZone), Detail: err.Error()}
	}
	o.DefaultTimeZone = loc
	if err := o.Validate(); err != nil {
		return Options{}, err
	}
	return o, nil
}

// Validate reports the first invalid option as a *FieldError naming its flag.
func (o Options) Validate() error {
	switch {
	case o.DefaultScalingWindow < 0:
		return &FieldError{Field: "--scaling-schedule-default-scaling-window", Value: o.DefaultScalingWindow.String(), Detail: "must not be negative"}
	case o.DefaultScalingWindow > maxMinutes*time.Minute:
		return &FieldError{Field: "--scaling-schedule-default-scaling-window", Value: o.DefaultScalingWindow.String(), Detail: "must be at most 100 years"}
	case o.RampSteps < 1:
		return &FieldError{Field: "--scaling-schedule-ramp-steps", Value: strconv.Itoa(o.RampSteps), Detail: "must be at least 1"}
	}
	return nil
}

// Result is what a spec amounts to at one instant.
type Result struct {
	// Value is the metric's value: the largest of the schedules' values,
	// each ramped (see the package documentation).
	Value int64
	// Active is true while any schedule is in its window, ramps included
	// (status.active): from start-window until end+window.
	Active bool
	// ActiveMax is the largest unramped value of the schedules that are
	// Active; 0 if none is. It is what the original's replica adjuster
	// scales for.
	ActiveMax int64
}

// Value returns the value of spec's metric at now and whether any of its
// schedules is active (ramps included), as Evaluate does.
func Value(spec ScalingScheduleSpec, now time.Time, opts Options) (value int64, active bool, err error) {
	r, err := Evaluate(spec, now, opts)
	return r.Value, r.Active, err
}

// Evaluate returns what spec amounts to at now: its metric's value, whether it
// is active and the largest value of its active schedules. An invalid spec
// (see Validate) or invalid opts give an error and a zero Result.
func Evaluate(spec ScalingScheduleSpec, now time.Time, opts Options) (Result, error) {
	if err := opts.Validate(); err != nil {
		return Result{}, err
	}
	c, err := compile(spec)
	if err != nil {
		return Result{}, err
	}
	window := opts.DefaultScalingWindow
	if c.hasWindow {
		window = c.window
	}
	defaultLoc := opts.DefaultTimeZone
	if defaultLoc == nil {
		defaultLoc = time.UTC
	}
	var r Result
	for i := range c.entries {
		e := &c.entries[i]
		var o around
		if e.oneTime {
			o = e.oneTimeAround(now)
		} else {
			loc := e.loc
			if loc == nil {
				loc = defaultLoc
			}
			o, err = e.repeatingAround(now, loc)
			if err != nil {
				return Result{}, fmt.Errorf("spec.schedules[%d]: %w", i, err)
			}
		}
		v, active := o.value(now, window, opts.RampSteps, e.value)
		if !active {
			continue
		}
		r.Active = true
		r.Value = max(r.Value, v)
		r.ActiveMax = max(r.ActiveMax, e.value)
	}
	return r, nil
}

// around is what of a schedule matters at one instant: the occurrence that
// started last (at or before it) and the one that starts next (after it).
type around struct {
	prev, next         bool
	prevEnd, nextStart time.Time
}

func (e *entry) oneTimeAround(now time.Time) around {
	if e.start.After(now) {
		return around{next: true, nextStart: e.start}
	}
	return around{prev: true, prevEnd: e.end}
}

// repeatingAround finds the occurrences of a Repeating schedule around now.
// Starts and ends are non-decreasing with the calendar day they belong to
// (wallClock is monotonic), so the latest start at or before now belongs to
// the occurrence with the latest end, and only it and the next start can
// contribute. A day with one of the weekdays comes within any seven, so
// looking nine days back and forth is enough, a day of slack each side for
// zones whose offset changes by a whole day.
func (e *entry) repeatingAround(now time.Time, loc *time.Location) (around, error) {
	y, m, d := now.In(loc).Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC) // the civil date, not an instant
	var o around
	for i := 1; i >= -8 && !o.prev; i-- {
		day := today.AddDate(0, 0, i)
		if !e.days[day.Weekday()] {
			continue
		}
		if s := wallClock(day, e.startMin, loc); !s.After(now) {
			o.prev, o.prevEnd = true, e.repeatingEnd(day, s, loc)
		}
	}
	for i := -1; i <= 8 && !o.next; i++ {
		day := today.AddDate(0, 0, i)
		if !e.days[day.Weekday()] {
			continue
		}
		if s := wallClock(day, e.startMin, loc); s.After(now) {
			o.next, o.nextStart = true, s
		}
	}
	if !o.prev || !o.next {
		return around{}, errors.New("no occurrence found around " + now.Format(time.RFC3339)) // unreachable with days validated
	}
	return o, nil
}

// repeatingEnd is the end of the occurrence that starts at start on day: the
// later of endTime (on the next day if it is before startTime) and start +
// durationMinutes, and never before start.
func (e *entry) repeatingEnd(day time.Time, start time.Time, loc *time.Location) time.Time {
	end := start
	if e.hasEnd {
		endDay := day
		if e.endMin < e.startMin {
			endDay = day.AddDate(0, 0, 1)
		}
		if t := wallClock(endDay, e.endMin, loc); t.After(end) {
			end = t
		}
	}
	if t := start.Add(e.duration); t.After(end) {
		end = t
	}
	return end
}

// value is a schedule's value at now and whether it is active: full from the
// last start to its end, ramping up in the window before the next start and
// down in the window after the last end; the larger where they meet.
func (o around) value(now time.Time, window time.Duration, steps int, full int64) (int64, bool) {
	var v int64
	active := false
	if o.prev {
		if now.Before(o.prevEnd) {
			return full, true
		}
		if now.Before(o.prevEnd.Add(window)) { // ramp down: the part of the window still to come
			v, active = ramp(o.prevEnd.Add(window).Sub(now), window, steps, full), true
		}
	}
	if o.next && !now.Before(o.nextStart.Add(-window)) { // ramp up: the part of the window gone by
		v, active = max(v, ramp(now.Sub(o.nextStart.Add(-window)), window, steps, full)), true
	}
	return v, active
}

// ramp is floor(floor(part/window·steps)·full/steps), part ≤ window, computed
// exactly on 128 bits: the step reached, then that fraction of full.
func ramp(part, window time.Duration, steps int, full int64) int64 {
	if window <= 0 || part <= 0 {
		return 0
	}
	part = min(part, window)
	hi, lo := bits.Mul64(uint64(part), uint64(steps))
	k, _ := bits.Div64(hi, lo, uint64(window)) // k ≤ steps
	hi, lo = bits.Mul64(k, uint64(full))
	v, _ := bits.Div64(hi, lo, uint64(steps)) // v ≤ full
	return int64(v)
}

// wallClock is the instant at which the clocks of loc show minute (after
// midnight) on day (a civil date, as midnight UTC), defined also where the
// clocks skip or repeat it:
//
//   - a time skipped by a forward change (02:30 when the clocks go from 02:00
//     to 03:00) is the instant of the change (03:00 there), the first existing
//     time after it;
//   - a time shown twice after a backward change (02:30 when the clocks go
//     from 03:00 back to 02:00) is its first showing (in summer time).
//
// Both rules keep the mapping monotonic, so a period never ends before it
// starts. time.Date leaves these cases unspecified, so they are resolved here
// from the zone's transitions (time.Time.ZoneBounds).
func wallClock(day time.Time, minute int, loc *time.Location) time.Time {
	wall := day.Add(time.Duration(minute) * time.Minute) // the wanted reading, as if UTC
	// Walk the zone periods in order, from an instant whose reading is
	// certainly before wall (offsets are within ±26 hours).
	t := wall.Add(-48 * time.Hour).In(loc)
	limit := wall.Add(48 * time.Hour)
	for {
		_, off := t.Zone()
		from, until := t.ZoneBounds()
		c := wall.Add(-time.Duration(off) * time.Second) // wall under this period's offset
		if (from.IsZero() || !c.Before(from)) && (until.IsZero() || c.Before(until)) {
			return c.In(loc) // the first period that shows wall: its first showing
		}
		if until.IsZero() || until.After(limit) {
			break
		}
		next := until.In(loc)
		_, nextOff := next.Zone()
		if !c.Before(until) && wall.Add(-time.Duration(nextOff)*time.Second).Before(until) {
			return next // wall falls in the gap between this period and the next
		}
		t = next
	}
	y, m, d := day.Date()
	return time.Date(y, m, d, minute/60, minute%60, 0, 0, loc) // not reached with real zone data
}
