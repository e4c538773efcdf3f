package schedulecontroller

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestAdjuster(t *testing.T) {
	web := autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	tests := []struct {
		name      string
		hpa       *autoscalingv2.HorizontalPodAutoscaler
		schedules map[string]int64 // ClusterScalingSchedule name → value
		at        time.Time
		want      int32 // replicas set; 0: none
		wantEvent string
	}{{
		name:      "inside the tolerance band: scaled",
		hpa:       hpa("web", 10, 50, objectMetric(KindClusterScalingSchedule, "sale", "100")),
		schedules: map[string]int64{"sale": 1050}, // 10.5 pods' worth on 10: ratio 1.05
		want:      11,
		wantEvent: "Scaling schedule 'ClusterScalingSchedule/sale' adjusted replicas 10 -> 11 based on metric: sale",
	}, {
		name:      "at the edge of the band: scaled",
		hpa:       hpa("web", 10, 50, objectMetric(KindClusterScalingSchedule, "sale", "100")),
		schedules: map[string]int64{"sale": 1100},
		want:      11,
		wantEvent: "Scaling schedule 'ClusterScalingSchedule/sale' adjusted replicas 10 -> 11 based on metric: sale",
	}, {
		name:      "outside the band: the HPA scales itself",
		hpa:       hpa("web", 10, 50, objectMetric(KindClusterScalingSchedule, "sale", "100")),
		schedules: map[string]int64{"sale": 1200},
	}, {
		name:      "expected equal to current: nothing",
		hpa:       hpa("web", 10, 50, objectMetric(KindClusterScalingSchedule, "sale", "100")),
		schedules: map[string]int64{"sale": 1000},
	}, {
		name:      "expected below current: nothing",
		hpa:       hpa("web", 12, 50, objectMetric(KindClusterScalingSchedule, "sale", "100")),
		schedules: map[string]int64{"sale": 1150},
	}, {
		name:      "capped at maxReplicas",
		hpa:       hpa("web", 100, 105, objectMetric(KindClusterScalingSchedule, "sale", "100")),
		schedules: map[string]int64{"sale": 10900}, // 109 expected, ratio 1.09
		want:      105,
		wantEvent: "Scaling schedule 'ClusterScalingSchedule/sale' adjusted replicas 100 -> 105 based on metric: sale",
	}, {
		name:      "capped at maxReplicas = current: nothing",
		hpa:       hpa("web", 10, 10, objectMetric(KindClusterScalingSchedule, "sale", "100")),
		schedules: map[string]int64{"sale": 1050},
	}, {
		name: "several metrics: the highest expected",
		hpa: hpa("web", 100, 200,
			objectMetric(KindClusterScalingSchedule, "a", "100"),
			objectMetric(KindClusterScalingSchedule, "b", "100"),
			objectMetric(KindClusterScalingSchedule, "c", "100")),
		schedules: map[string]int64{"a": 10200, "b": 10800, "c": 10400},
		want:      108,
		wantEvent: "Scaling schedule 'ClusterScalingSchedule/b' adjusted replicas 100 -> 108 based on metric: b",
	}, {
		name: "the highest expected is outside the band: nothing",
		hpa: hpa("web", 100, 200,
			objectMetric(KindClusterScalingSchedule, "a", "100"),
			objectMetric(KindClusterScalingSchedule, "b", "100")),
		schedules: map[string]int64{"a": 10500, "b": 15000},
	}, {
		name:      "currentReplicas 0: nothing",
		hpa:       hpa("web", 0, 50, objectMetric(KindClusterScalingSchedule, "sale", "100")),
		schedules: map[string]int64{"sale": 1050},
	}, {
		name:      "missing schedule: nothing",
		hpa:       hpa("web", 10, 50, objectMetric(KindClusterScalingSchedule, "nope", "100")),
		schedules: map[string]int64{"sale": 1050},
	}, {
		name: "a missing schedule does not stop the others",
		hpa: hpa("web", 10, 50,
			objectMetric(KindClusterScalingSchedule, "nope", "100"),
			objectMetric(KindClusterScalingSchedule, "sale", "100")),
		schedules: map[string]int64{"sale": 1050},
		want:      11,
		wantEvent: "Scaling schedule 'ClusterScalingSchedule/sale' adjusted replicas 10 -> 11 based on metric: sale",
	}, {
		name:      "zero averageValue: nothing",
		hpa:       hpa("web", 10, 50, objectMetric(KindClusterScalingSchedule, "sale", "0")),
		schedules: map[string]int64{"sale": 1050},
	}, {
		name:      "milli averageValue is exact",
		hpa:       hpa("web", 10, 50, objectMetric(KindClusterScalingSchedule, "sale", "950m")),
		schedules: map[string]int64{"sale": 10}, // ceil(10 / 0.95) = 11, ratio 1.053
		want:      11,
		wantEvent: "Scaling schedule 'ClusterScalingSchedule/sale' adjusted replicas 10 -> 11 based on metric: sale",
	}, {
		name: "a Value target is not the adjuster's",
		hpa: func() *autoscalingv2.HorizontalPodAutoscaler {
			m := objectMetric(KindClusterScalingSchedule, "sale", "100")
			m.Object.Target = autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: ptr(resource.MustParse("100"))}
			return hpa("web", 10, 50, m)
		}(),
		schedules: map[string]int64{"sale": 1050},
	}, {
		name: "another group's kind of the same name: nothing",
		hpa: func() *autoscalingv2.HorizontalPodAutoscaler {
			m := objectMetric(KindClusterScalingSchedule, "sale", "100")
			m.Object.DescribedObject.APIVersion = "example.com/v1"
			return hpa("web", 10, 50, m)
		}(),
		schedules: map[string]int64{"sale": 1050},
	}, {
		name:      "schedule not active: nothing",
		hpa:       hpa("web", 10, 50, objectMetric(KindClusterScalingSchedule, "sale", "100")),
		schedules: map[string]int64{"sale": 1050},
		at:        t0.Add(-time.Hour),
	}, {
		name: "scale-up disabled in the HPA's behavior: nothing",
		hpa: func() *autoscalingv2.HorizontalPodAutoscaler {
			h := hpa("web", 10, 50, objectMetric(KindClusterScalingSchedule, "sale", "100"))
			h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{SelectPolicy: ptr(autoscalingv2.DisabledPolicySelect)}}
			return h
		}(),
		schedules: map[string]int64{"sale": 1050},
	}, {
		name: "the HPA's own scale-up tolerance",
		hpa: func() *autoscalingv2.HorizontalPodAutoscaler {
			h := hpa("web", 10, 50, objectMetric(KindClusterScalingSchedule, "sale", "100"))
			h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{Tolerance: ptr(resource.MustParse("200m"))}}
			return h
		}(),
		schedules: map[string]int64{"sale": 1200},
		want:      12,
		wantEvent: "Scaling schedule 'ClusterScalingSchedule/sale' adjusted replicas 10 -> 12 based on metric: sale",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.hpa)
			for name, v := range tt.schedules {
				e.schedules.addClusterScalingSchedule(name, oneTime(t0, 60, v))
			}
			e.scaler.replicas["app/web"] = tt.hpa.Status.CurrentReplicas
			at := tt.at
			if at.IsZero() {
				at = t0.Add(5 * time.Minute)
			}
			e.at(at)

			var wantCalls []scaleCall
			if tt.wantEvent != "" {
				wantCalls = []scaleCall{{"app", web, tt.want}}
			}
			if diff := cmp.Diff(wantCalls, e.scaler.get(), cmp.AllowUnexported(scaleCall{})); diff != "" {
				t.Fatalf("scale calls (-want +got):\n%s", diff)
			}
			var got []string
			for _, ev := range e.recorder.get() {
				if ev.reason != ReasonScalingAdjusted {
					continue
				}
				if ev.typ != corev1.EventTypeNormal || ev.object != tt.hpa {
					t.Errorf("event %+v: want Normal on the HPA", ev)
				}
				got = append(got, ev.message)
			}
			var want []string
			if tt.wantEvent != "" {
				want = []string{tt.wantEvent}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("events (-want +got):\n%s", diff)
			}

			// The next tick sees the HPA at the new count and does nothing more.
			if tt.wantEvent != "" {
				tt.hpa.Status.CurrentReplicas = tt.want
				e.at(at.Add(10 * time.Second))
				if n := len(e.scaler.get()); n != 1 {
					t.Fatalf("%d scale calls after the second tick, want 1", n)
				}
			}
		})
	}
}

func TestAdjusterNamespacedSchedule(t *testing.T) {
	h := hpa("web", 10, 50, objectMetric(KindScalingSchedule, "sale", "100"))
	e := newEnv(t, h)
	e.schedules.addScalingSchedule("other", "sale", oneTime(t0, 60, 1050)) // another namespace's: not this HPA's
	e.scaler.replicas["app/web"] = 10
	e.at(t0)
	if c := e.scaler.get(); len(c) != 0 {
		t.Fatalf("scaled from another namespace's schedule: %v", c)
	}
	e.schedules.addScalingSchedule("app", "sale", oneTime(t0, 60, 1050))
	e.at(t0.Add(10 * time.Second))
	if c := e.scaler.get(); len(c) != 1 || c[0].replicas != 11 {
		t.Fatalf("scale calls = %v, want one to 11", c)
	}
	ev := e.recorder.get()
	if len(ev) != 1 || ev[0].message != "Scaling schedule 'ScalingSchedule/sale' adjusted replicas 10 -> 11 based on metric: sale" {
		t.Fatalf("events = %v", ev)
	}
}

func TestAdjusterMissingScheduleLoggedOnce(t *testing.T) {
	h := hpa("web", 10, 50, objectMetric(KindClusterScalingSchedule, "nope", "100"))
	e := newEnv(t, h)
	e.scaler.replicas["app/web"] = 10
	for i := range 5 {
		e.at(t0.Add(time.Duration(i) * 10 * time.Second))
	}
	if n := strings.Count(e.logs.String(), "does not exist"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, e.logs)
	}
	if c := e.scaler.get(); len(c) != 0 {
		t.Errorf("scale calls = %v", c)
	}
	if ev := e.recorder.get(); len(ev) != 0 {
		t.Errorf("events = %v", ev)
	}
}

func TestAdjusterTargetAlreadyScaled(t *testing.T) {
	h := hpa("web", 10, 50, objectMetric(KindClusterScalingSchedule, "sale", "100"))
	e := newEnv(t, h)
	e.schedules.addClusterScalingSchedule("sale", oneTime(t0, 60, 1050))
	e.scaler.replicas["app/web"] = 11 // the HPA's status is behind its target's spec
	e.at(t0)
	if ev := e.recorder.get(); len(ev) != 0 {
		t.Fatalf("events = %v, want none: nothing was changed", ev)
	}
}

func TestExpectedReplicas(t *testing.T) {
	for _, tt := range []struct {
		value, milli, want int64
	}{
		{1050, 100_000, 11},
		{1000, 100_000, 10},
		{5, 500, 10},
		{1, 3000, 1},
		{math.MaxInt64, 1, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64, 1000},
	} {
		if got := expectedReplicas(tt.value, tt.milli); got != tt.want {
			t.Errorf("expectedReplicas(%d, %d) = %d, want %d", tt.value, tt.milli, got, tt.want)
		}
	}
}
