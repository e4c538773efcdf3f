package v1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ScalingSchedule is a namespaced schedule of metric values: an HPA's Object metric
// that describes it follows its schedules.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=sched;schedule,categories=all
// +kubebuilder:printcolumn:name="Active",type=boolean,JSONPath=`.status.active`,description="Whether one or more schedules are currently active."
type ScalingSchedule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ScalingScheduleSpec `json:"spec"`
	// +optional
	Status ScalingScheduleStatus `json:"status"`
}

// ScalingScheduleList is a list of ScalingSchedules.
//
// +kubebuilder:object:root=true
type ScalingScheduleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ScalingSchedule `json:"items"`
}

// ClusterScalingSchedule is a cluster-scoped ScalingSchedule, for HPAs in any namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=css;clustersched;clusterschedule
// +kubebuilder:printcolumn:name="Active",type=boolean,JSONPath=`.status.active`,description="Whether one or more schedules are currently active."
type ClusterScalingSchedule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ScalingScheduleSpec `json:"spec"`
	// +optional
	Status ScalingScheduleStatus `json:"status"`
}

// ClusterScalingScheduleList is a list of ClusterScalingSchedules.
//
// +kubebuilder:object:root=true
type ClusterScalingScheduleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterScalingSchedule `json:"items"`
}

// ScalingScheduleSpec is the spec of a ScalingSchedule or a
// ClusterScalingSchedule: the schedules whose values make up one metric.
type ScalingScheduleSpec struct {
	// ScalingWindowDurationMinutes is the length, in minutes, of the ramp
	// before each schedule's start and after its end. Unset means the
	// adapter's --scaling-schedule-default-scaling-window; 0 disables ramps.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ScalingWindowDurationMinutes *int64 `json:"scalingWindowDurationMinutes,omitempty"`

	// Schedules are the schedules of this object. Their values make up one
	// metric; where they overlap, the largest value wins.
	// +kubebuilder:validation:MinItems=1
	Schedules []Schedule `json:"schedules"`
}

// ScalingScheduleStatus is the status of a ScalingSchedule or a
// ClusterScalingSchedule.
type ScalingScheduleStatus struct {
	// Active is true while any of the schedules, ramps included, is active.
	// +optional
	// +kubebuilder:default=false
	Active bool `json:"active"`
}

// Schedule is one entry of ScalingScheduleSpec.Schedules.
type Schedule struct {
	// Type is OneTime (Date, and EndDate or DurationMinutes) or Repeating
	// (Period).
	Type ScheduleType `json:"type"`

	// Period defines when a Repeating schedule starts; only for Repeating.
	// +optional
	Period *SchedulePeriod `json:"period,omitempty"`

	// Date is the start of a OneTime schedule, an RFC 3339 date-time with
	// its offset, like 2021-10-02T08:08:08+02:00; only for OneTime.
	// +optional
	Date *ScheduleDate `json:"date,omitempty"`

	// EndDate is the end of a OneTime schedule, an RFC 3339 date-time;
	// only for OneTime. With DurationMinutes as well, the later end wins.
	// +optional
	EndDate *ScheduleDate `json:"endDate,omitempty"`

	// DurationMinutes is how long, in elapsed minutes from the start, the
	// schedule lasts. With EndDate (OneTime) or Period.EndTime (Repeating)
	// as well, the later end wins.
	// +optional
	// +kubebuilder:validation:Minimum=0
	DurationMinutes int `json:"durationMinutes"`

	// Value is the metric's value while the schedule is active.
	// +kubebuilder:validation:Minimum=0
	Value int64 `json:"value"`
}

// ScheduleType tells a OneTime schedule from a Repeating one.
// +kubebuilder:validation:Enum=OneTime;Repeating
type ScheduleType string

// The schedule types.
const (
	OneTimeSchedule   ScheduleType = "OneTime"
	RepeatingSchedule ScheduleType = "Repeating"
)

// SchedulePeriod is when a Repeating schedule starts (and ends).
type SchedulePeriod struct {
	// StartTime is the wall-clock start, HH:MM (00:00 to 23:59), in
	// Timezone, on each of Days.
	// +kubebuilder:validation:Pattern="^(([0-1][0-9])|([2][0-3])):([0-5][0-9])$"
	StartTime string `json:"startTime"`

	// EndTime is the wall-clock end, HH:MM. An EndTime before StartTime
	// ends on the next day (22:00 to 02:00 lasts four hours).
	// +optional
	// +kubebuilder:validation:Pattern="^(([0-1][0-9])|([2][0-3])):([0-5][0-9])$"
	EndTime string `json:"endTime"`

	// Days are the days of the week on which the schedule starts.
	Days []ScheduleDay `json:"days"`

	// Timezone is the IANA time zone name, like Europe/Berlin, that
	// StartTime, EndTime and Days are in. Empty means the adapter's
	// --scaling-schedule-default-time-zone (the field is required, as in
	// the original's schema, but may be empty).
	Timezone string `json:"timezone"`
}

// ScheduleDay is a day of the week, as its three-letter English abbreviation.
// +kubebuilder:validation:Enum=Sun;Mon;Tue;Wed;Thu;Fri;Sat
type ScheduleDay string

// The days of the week.
const (
	SundaySchedule    ScheduleDay = "Sun"
	MondaySchedule    ScheduleDay = "Mon"
	TuesdaySchedule   ScheduleDay = "Tue"
	WednesdaySchedule ScheduleDay = "Wed"
	ThursdaySchedule  ScheduleDay = "Thu"
	FridaySchedule    ScheduleDay = "Fri"
	SaturdaySchedule  ScheduleDay = "Sat"
)

// ScheduleDate is an RFC 3339 date-time, like 2021-10-02T08:08:08+02:00.
// +kubebuilder:validation:Format="date-time"
type ScheduleDate string
