package schedule

import zv1 "github.com/custompodautoscaler/cpa/api/zalando/v1"

// The spec and status of the zalando.org/v1 ScalingSchedule and ClusterScalingSchedule
// resources (api/zalando/v1). Every field is checked again by Validate, because objects
// written before a CRD change, or created with validation off, reach the adapter as well.
type (
	ScalingScheduleSpec   = zv1.ScalingScheduleSpec
	ScalingScheduleStatus = zv1.ScalingScheduleStatus
	Schedule              = zv1.Schedule
	ScheduleType          = zv1.ScheduleType
	SchedulePeriod        = zv1.SchedulePeriod
	ScheduleDay           = zv1.ScheduleDay
	ScheduleDate          = zv1.ScheduleDate
)

// The schedule types and days.
const (
	OneTimeSchedule   = zv1.OneTimeSchedule
	RepeatingSchedule = zv1.RepeatingSchedule
	SundaySchedule    = zv1.SundaySchedule
	MondaySchedule    = zv1.MondaySchedule
	TuesdaySchedule   = zv1.TuesdaySchedule
	WednesdaySchedule = zv1.WednesdaySchedule
	ThursdaySchedule  = zv1.ThursdaySchedule
	FridaySchedule    = zv1.FridaySchedule
	SaturdaySchedule  = zv1.SaturdaySchedule
)
