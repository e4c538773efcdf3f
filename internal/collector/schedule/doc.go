// Package schedule computes the metric of a ScalingSchedule or
// ClusterScalingSchedule (zalando.org/v1) at an instant: a pure function of
// the spec, the instant and the adapter's --scaling-schedule-* options, with
// no Kubernetes client and no clock of its own. The collector serves the
// value as the Object metric of the schedule; the controller writes Active to
// status.active.
//
// # Schedules
//
// A OneTime schedule starts at date (RFC 3339, with its offset) and ends at
// endDate or at date + durationMinutes; with both, the later end wins (as in
// the original since its PR #505). A Repeating schedule starts at
// period.startTime (HH:MM) on each of period.days, in period.timezone (an IANA
// name; empty means Options.DefaultTimeZone), and ends at period.endTime or
// durationMinutes after the start, again the later of the two. Each schedule
// is worth value from its start (included) to its end (excluded).
//
// # Ramps
//
// With a window W (spec.scalingWindowDurationMinutes, or
// Options.DefaultScalingWindow when unset) and N = Options.RampSteps, a
// schedule ramps up in [start-W, start) and down in [end, end+W): at a
// fraction f of the way through the ramp towards the full value (f from 0 at
// the far edge to 1 at the schedule), it is worth floor(floor(f·N)·value/N),
// computed exactly in integers. So the value changes in N steps (each at
// least the HPA's 10 % tolerance with N = 10), is 0 in the first step of a
// ramp up and reaches value at start; at end it is value, drops one step right
// after, then another every W/N, and is 0 in the last step of the ramp down
// (as the original's formula). W = 0 disables ramps.
//
// Where schedules or ramps overlap, the largest value wins. Result.Active is
// true exactly while some schedule is within [start-W, end+W), in its first
// ramp step too (whose value is 0): the window is what status.active shows.
//
// # Midnight
//
// An occurrence of a Repeating schedule belongs to the day it starts on. An
// endTime before startTime ends on the next day, and a durationMinutes may
// reach into following days; that tail stays part of the occurrence. So
// 22:00 to 02:00 on Fri is active on Saturday at 01:00 although Sat is not in
// days. Ramps cross midnight too: a 00:05 start ramps up from 23:55 the day
// before. An endTime equal to startTime means no end of its own (the
// duration decides); 00:00 as endTime is the midnight that ends the day.
//
// # Daylight saving time
//
// Times of day are wall-clock times in the schedule's zone, resolved with the
// zone's real transitions (time/tzdata is embedded, so the binary needs no
// zone files on the system):
//
//   - A time the clocks skip (02:30 on the day Europe/Berlin goes from 02:00
//     to 03:00) is the instant of the change, which the clocks show as 03:00.
//     A schedule from 02:30 starts at 03:00 that day; one from 01:00 to 02:30
//     ends at 03:00, covering all the times that exist between the two; one
//     from 02:15 to 02:45 is empty that day (only its ramps remain).
//   - A time the clocks show twice (02:30 on the day Europe/Berlin goes from
//     03:00 back to 02:00) is its first showing, in summer time. A schedule
//     01:00 to 03:00 that day lasts three hours; one starting at 02:30 starts
//     at the first 02:30.
//   - durationMinutes is elapsed time: 01:00 plus 180 minutes on the day the
//     clocks go forward ends at 05:00 on the clocks, while endTime 04:00 ends
//     when the clocks show 04:00, two hours later.
//
// # Validation
//
// Every field is checked (Validate) and each problem is a *FieldError naming
// the field's path and value, like
//
//	spec.schedules[1].period.timezone: "Mars/Olympus": unknown time zone
//
// A spec with any invalid field has no value: Evaluate returns the error.
//
// # Differences from the original
//
//   - The original considered only the occurrence of "today" in the zone, so
//     the tail of a period crossing midnight was lost, and so was the ramp up
//     of a period starting just after midnight and the ramp down of one
//     ending just before. Here occurrences of the days around the instant are
//     considered.
//   - An unknown period.timezone was silently replaced by the default zone;
//     here it is an error. "Local" is refused (it differs between machines).
//   - Invalid dates, times and days gave errors that did not say which field
//     was wrong, and some (endTime) were reported as the wrong field; fields
//     of the other type (a period on a OneTime schedule, a date on a
//     Repeating one), negative values and durations, no schedules, no days,
//     an endDate before date and schedules that can never be active (neither
//     end nor duration, an end equal to the start) were accepted; here they
//     are errors.
//   - DST cases were left to time.Date, whose choice in them is unspecified.
//   - Ramp values were computed in float64 (truncated); here exactly, with the
//     same results wherever float64 was exact.
//   - Ramp steps below 1 made the original's ramps compute 0·∞ (NaN) or
//     negative values; here they are an invalid option.
package schedule

import _ "time/tzdata" // zone data for time.LoadLocation where the system has none
