//go:build e2e

package framework

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KeepNamespacesEnv, when set to a non-empty value, keeps the namespaces of failed
// tests for inspection instead of deleting them.
const KeepNamespacesEnv = "CPA_E2E_KEEP_NAMESPACES"

// E2ELabel marks every namespace the framework creates.
const E2ELabel = "e2e.custompodautoscaler.com/test"

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// NewNamespace creates a namespace with a unique name derived from the test's name,
// waits until its default ServiceAccount exists (so pods can be created at once),
// and deletes it when the test ends. When the test failed, the namespace's pods and
// events are logged first.
func NewNamespace(t testing.TB) string {
	t.Helper()
	c := Ensure(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	base := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = strings.TrimRight(base[:40], "-")
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := fmt.Sprintf("e2e-%s-%s", base, hex.EncodeToString(suffix))

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   name,
		Labels: map[string]string{E2ELabel: base},
	}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			DumpNamespace(t, name)
			if os.Getenv(KeepNamespacesEnv) != "" {
				t.Logf("keeping namespace %s (%s is set)", name, KeepNamespacesEnv)
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		policy := metav1.DeletePropagationBackground
		err := c.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", name, err)
		}
	})
	Eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		_, err := c.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			return false, fmt.Sprintf("ServiceAccount %s/default: %v", name, err)
		}
		return true, ""
	})
	return name
}

// DumpNamespace logs the pods and events of a namespace, to explain a failure.
func DumpNamespace(t testing.TB, namespace string) {
	t.Helper()
	c := Ensure(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	fmt.Fprintf(&b, "namespace %s:\n", namespace)
	if pods, err := c.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{}); err != nil {
		fmt.Fprintf(&b, "  listing pods: %v\n", err)
	} else {
		fmt.Fprintf(&b, "  pods (%d):\n", len(pods.Items))
		for i := range pods.Items {
			fmt.Fprintf(&b, "    %s\n", describePod(&pods.Items[i]))
		}
	}
	if events, err := c.Client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{}); err != nil {
		fmt.Fprintf(&b, "  listing events: %v\n", err)
	} else {
		items := events.Items
		sort.SliceStable(items, func(i, j int) bool { return eventTime(&items[i]).Before(eventTime(&items[j])) })
		if len(items) > 50 {
			items = items[len(items)-50:]
		}
		fmt.Fprintf(&b, "  events (last %d of %d):\n", len(items), len(events.Items))
		for _, e := range items {
			fmt.Fprintf(&b, "    %s %s %s/%s %s: %s\n", eventTime(&e).Format(time.TimeOnly), e.Type,
				e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
	t.Log(b.String())
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	default:
		return e.CreationTimestamp.Time
	}
}

func describePod(p *corev1.Pod) string {
	s := fmt.Sprintf("%s phase=%s node=%s ip=%s ready=%t", p.Name, p.Status.Phase, p.Spec.NodeName, p.Status.PodIP, podReady(p))
	if p.DeletionTimestamp != nil {
		s += " terminating"
	}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			s += fmt.Sprintf(" [%s: %s]", c.Type, c.Message)
		}
	}
	return s
}
