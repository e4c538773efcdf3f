//go:build e2e

package framework

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Default bounds of the WaitFor helpers. kwok makes pods Running within a second or
// two; the margins are for a loaded 2-core machine.
const (
	DefaultTimeout  = 60 * time.Second
	DefaultInterval = 250 * time.Millisecond
)

// Eventually calls cond every interval until it returns true, and fails the test
// (t.Fatalf, so call it from the test's goroutine) if that does not happen within
// timeout. cond's string says what it saw last; it is the failure message.
func Eventually(t testing.TB, timeout, interval time.Duration, cond func() (done bool, status string)) {
	t.Helper()
	if err := poll(context.Background(), timeout, interval, cond); err != nil {
		t.Fatal(err)
	}
}

// EventuallyCtx is Eventually that also stops, and fails, when ctx ends.
func EventuallyCtx(ctx context.Context, t testing.TB, timeout, interval time.Duration, cond func() (done bool, status string)) {
	t.Helper()
	if err := poll(ctx, timeout, interval, cond); err != nil {
		t.Fatal(err)
	}
}

// Consistently checks that cond stays true, calling it every interval for the
// whole duration; it fails the test the first time cond returns false.
func Consistently(t testing.TB, duration, interval time.Duration, cond func() (ok bool, status string)) {
	t.Helper()
	deadline := time.Now().Add(duration)
	for {
		ok, status := cond()
		if !ok {
			t.Fatalf("condition stopped holding after %s: %s", duration-time.Until(deadline).Round(time.Millisecond), status)
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(interval)
	}
}

func poll(ctx context.Context, timeout, interval time.Duration, cond func() (bool, string)) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var status string
	for {
		var done bool
		done, status = cond()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			if status == "" {
				status = "(no status)"
			}
			return fmt.Errorf("gave up after %s (timeout %s): %s", time.Since(start).Round(time.Millisecond), timeout, status)
		case <-ticker.C:
		}
	}
}

// WaitForReplicas waits until Deployment namespace/name has settled at n replicas:
// spec.replicas is n, the controller has observed the latest spec, and n pods exist,
// all updated and ready.
func WaitForReplicas(ctx context.Context, t testing.TB, namespace, name string, n int32) {
	t.Helper()
	c := Ensure(t)
	EventuallyCtx(ctx, t, DefaultTimeout, DefaultInterval, func() (bool, string) {
		d, err := c.Client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Sprintf("getting Deployment %s/%s: %v", namespace, name, err)
		}
		spec := int32(1)
		if d.Spec.Replicas != nil {
			spec = *d.Spec.Replicas
		}
		s := d.Status
		status := fmt.Sprintf("Deployment %s/%s: want %d replicas; spec.replicas=%d status: replicas=%d updated=%d ready=%d available=%d observedGeneration=%d/%d",
			namespace, name, n, spec, s.Replicas, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas, s.ObservedGeneration, d.Generation)
		return spec == n && s.ObservedGeneration >= d.Generation && s.Replicas == n && s.UpdatedReplicas == n && s.ReadyReplicas == n, status
	})
}

// WaitForSpecReplicas waits until Deployment namespace/name has spec.replicas == n,
// without waiting for pods: what an autoscaler decided.
func WaitForSpecReplicas(ctx context.Context, t testing.TB, namespace, name string, n int32) {
	t.Helper()
	c := Ensure(t)
	EventuallyCtx(ctx, t, DefaultTimeout, DefaultInterval, func() (bool, string) {
		s, err := c.Client.AppsV1().Deployments(namespace).GetScale(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Sprintf("getting the scale of Deployment %s/%s: %v", namespace, name, err)
		}
		return s.Spec.Replicas == n, fmt.Sprintf("Deployment %s/%s: spec.replicas=%d, want %d", namespace, name, s.Spec.Replicas, n)
	})
}

// WaitForPodsRunning waits until exactly n pods match selector (a label selector
// such as "app=web") in namespace, none terminating, all Running and Ready with a
// pod IP, and returns them.
func WaitForPodsRunning(ctx context.Context, t testing.TB, namespace, selector string, n int) []corev1.Pod {
	t.Helper()
	c := Ensure(t)
	var pods []corev1.Pod
	EventuallyCtx(ctx, t, DefaultTimeout, DefaultInterval, func() (bool, string) {
		list, err := c.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, fmt.Sprintf("listing pods %q in %s: %v", selector, namespace, err)
		}
		running := 0
		var desc []string
		for i := range list.Items {
			p := &list.Items[i]
			desc = append(desc, describePod(p))
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podReady(p) && p.Status.PodIP != "" {
				running++
			}
		}
		pods = list.Items
		status := fmt.Sprintf("pods %q in %s: want %d Running and Ready, have %d of %d pods: [%s]",
			selector, namespace, n, running, len(list.Items), strings.Join(desc, "; "))
		return running == n && len(list.Items) == n, status
	})
	return pods
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
