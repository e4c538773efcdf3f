package kubemetrics

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/custompodautoscaler/cpa/pkg/k8smetric"
)

// podGroups is how the HPA sorts a target's pods for one metric.
type podGroups struct {
	// samples are those of the ready pods only.
	samples map[string]k8smetric.PodMetric
	ready   int64
	ignored k8smetric.PodSet
	missing k8smetric.PodSet
}

// readinessRules are the HPA's CPU rules; they apply to the cpu resource only.
type readinessRules struct {
	cpu                     bool
	now                     time.Time
	cpuInitializationPeriod time.Duration
	initialReadinessDelay   time.Duration
}

// groupPods sorts pods as the HPA does: terminating and failed pods are skipped; Pending
// pods are ignored; running pods without a sample are missing; for CPU, a pod is also
// ignored while it is not ready or not yet started, and within cpuInitializationPeriod
// of its start when it is unready or its sample was taken before one window had passed
// since it became ready; after that period, when it is unready and never became ready
// within initialReadinessDelay of its start. Every other pod with a sample is ready; samples
// of pods not ready (or not among pods) are left out, as the HPA computes without them.
func groupPods(pods []*corev1.Pod, samples map[string]k8smetric.PodMetric, r readinessRules) podGroups {
	g := podGroups{samples: make(map[string]k8smetric.PodMetric, len(samples)), ignored: k8smetric.PodSet{}, missing: k8smetric.PodSet{}}
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		if pod.Status.Phase == corev1.PodPending {
			g.ignored.Add(pod.Name)
			continue
		}
		sample, ok := samples[pod.Name]
		if !ok {
			g.missing.Add(pod.Name)
			continue
		}
		if r.cpu && cpuUnready(pod, sample, r) {
			g.ignored.Add(pod.Name)
			continue
		}
		g.ready++
		g.samples[pod.Name] = sample
	}
	return g
}

func cpuUnready(pod *corev1.Pod, sample k8smetric.PodMetric, r readinessRules) bool {
	cond := readyCondition(pod)
	if cond == nil || pod.Status.StartTime == nil {
		return true
	}
	start := pod.Status.StartTime.Time
	if start.Add(r.cpuInitializationPeriod).After(r.now) {
		return cond.Status == corev1.ConditionFalse || sample.Timestamp.Before(cond.LastTransitionTime.Add(sample.Window))
	}
	return cond.Status == corev1.ConditionFalse && start.Add(r.initialReadinessDelay).After(cond.LastTransitionTime.Time)
}

func readyCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// readyRunning counts the running pods whose Ready condition is true, the HPA's pod count
// for Object and External metrics with a Value target.
func readyRunning(pods []*corev1.Pod) int64 {
	var n int64
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning {
			continue
		}
		if c := readyCondition(pod); c != nil && c.Status == corev1.ConditionTrue {
			n++
		}
	}
	return n
}
