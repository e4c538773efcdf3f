package annotations

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one malformed or unsupported piece of an HPA's metric configuration.
type Problem struct {
	// Field is the annotation key, or the spec field path such as
	// "spec.metrics[1].external.metric.selector".
	Field string
	// Value is the annotation's value or the field's value, as written.
	Value string
	// Metric names the affected metric as "<type>/<name>" (e.g. "External/queue-depth")
	// when known; unless Ignored, that metric yields no MetricConfig.
	Metric string
	// Message says what is wrong.
	Message string
	// Ignored means the annotation has no effect and the metric is still collected.
	Ignored bool
}

// maxValueInMessage bounds how much of a value Error repeats: queries can be long and an
// event's message is short.
const maxValueInMessage = 80

func (p Problem) Error() string {
	var b strings.Builder
	if strings.HasPrefix(p.Field, prefix) {
		fmt.Fprintf(&b, "annotation %q", p.Field)
	} else {
		b.WriteString(p.Field)
	}
	if p.Value != "" {
		v := p.Value
		if r := []rune(v); len(r) > maxValueInMessage {
			v = string(r[:maxValueInMessage]) + "…"
		}
		fmt.Fprintf(&b, " (value %q)", v)
	}
	b.WriteString(": ")
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in one HPA, sorted by field, then message. Parse
// returns it as its error when it is not empty.
type Problems []Problem

func (ps Problems) Error() string {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "; ")
}

func (ps Problems) sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Field != ps[j].Field {
			return ps[i].Field < ps[j].Field
		}
		if ps[i].Message != ps[j].Message {
			return ps[i].Message < ps[j].Message
		}
		return ps[i].Value < ps[j].Value
	})
}
