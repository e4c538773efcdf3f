package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

// guard is how long a test waits for a call that must return promptly. It is generous
// (a busy machine is slow), and far below what a hang would take: forever.
const guard = 30 * time.Second

// within runs f in a goroutine and fails the test if it has not returned within guard:
// a call that hangs fails the test instead of hanging it.
func within[T any](t *testing.T, what string, f func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-time.After(guard):
		t.Fatalf("%s did not return within %s", what, guard)
		panic("unreachable")
	}
}

func forbidden(verb, resource string) error {
	return apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "",
		fmt.Errorf(`User "system:serviceaccount:ns:cpa" cannot %s resource %q in API group "" in the namespace "ns"`, verb, resource))
}

// switchable is a reactor that refuses a request while on.
type switchable struct {
	on    atomic.Bool
	err   error
	calls atomic.Int32
}

func (s *switchable) react(k8stesting.Action) (bool, runtime.Object, error) {
	s.calls.Add(1)
	if s.on.Load() {
		return true, nil, s.err
	}
	return false, nil, nil
}

func (s *switchable) watch(k8stesting.Action) (bool, watch.Interface, error) {
	s.calls.Add(1)
	if s.on.Load() {
		return true, nil, s.err
	}
	return false, nil, nil
}

func (f *fixture) createPod(t *testing.T, name string) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "app"}}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if _, err := f.kube.CoreV1().Pods("ns").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func podNames(pods []*corev1.Pod) string {
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	return strings.Join(names, ",")
}

// Without list on pods the pod watch never syncs. The cycle must fail at once with an
// error naming the verb, the resource and the namespace, not wait forever; once the
// permission is granted the next call succeeds.
func TestPodsListForbidden(t *testing.T) {
	f := newFixture(t, deployment("app", "1", nil))
	var logs syncBuffer
	// A refused list must not wait for the timeout.
	f.withOptions(Options{Timeout: time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := startWatcher(t, f)
	f.createPod(t, "a")
	// No rule for pods at all: list and watch are refused.
	deny := &switchable{err: forbidden("list", "pods")}
	deny.on.Store(true)
	f.kube.PrependReactor("list", "pods", deny.react)
	denyWatch := &switchable{err: forbidden("watch", "pods")}
	denyWatch.on.Store(true)
	f.kube.PrependWatchReactor("pods", denyWatch.watch)

	_, err := within(t, "Pods with list forbidden", func() ([]*corev1.Pod, error) { return f.w.Pods(ctx, "app=app") })
	var perr *PermissionError
	if !errors.As(err, &perr) || perr.Verb != "list" || perr.Resource != "pods" || perr.Namespace != "ns" {
		t.Fatalf("error = %v, want a PermissionError for list pods in ns", err)
	}
	for _, want := range []string{"cannot list pods", `namespace "ns"`, "forbidden"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// Still refused: the next call fails the same way (a new attempt, not a cached answer).
	before := deny.calls.Load()
	if _, err := within(t, "Pods again", func() ([]*corev1.Pod, error) { return f.w.Pods(ctx, "app=app") }); !errors.As(err, &perr) {
		t.Fatalf("second call: %v", err)
	}
	if deny.calls.Load() == before {
		t.Errorf("the second call did not ask the API server again")
	}

	if strings.Contains(logs.String(), "refused to watch") {
		t.Errorf("a refused list and watch logged the list-only warning:\n%s", logs.String())
	}

	// The permission is granted: the next call lists and watches.
	deny.on.Store(false)
	denyWatch.on.Store(false)
	pods, err := within(t, "Pods after the grant", func() ([]*corev1.Pod, error) { return f.w.Pods(ctx, "app=app") })
	if err != nil || podNames(pods) != "a" {
		t.Fatalf("after the grant: pods %q, error %v", podNames(pods), err)
	}
	f.createPod(t, "b")
	waitFor(t, "the watch to deliver a new pod", func() bool {
		pods, err := f.w.Pods(ctx, "app=app")
		return err == nil && podNames(pods) == "a,b"
	})
}

// While the pod watch waits for its first list, nothing else is blocked: the target's
// snapshot and a pod call with a short deadline return.
func TestPodsWaitHoldsNoLock(t *testing.T) {
	f := newFixture(t, deployment("app", "1", nil))
	ctx := startWatcher(t, f)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	listing := make(chan struct{}, 1)
	f.kube.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		select {
		case listing <- struct{}{}:
		default:
		}
		<-release // an API server that never answers
		return true, nil, errors.New("released")
	})

	first := make(chan error, 1)
	cycleCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, err := f.w.Pods(cycleCtx, "app=app")
		first <- err
	}()
	select {
	case <-listing:
	case <-time.After(guard):
		t.Fatal("the pod watch never listed")
	}

	if _, err := within(t, "Snapshot while the pod watch is unsynced", func() (*Snapshot, error) { return f.w.Snapshot(ctx) }); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	_, err := within(t, "a second Pods call while the pod watch is unsynced", func() ([]*corev1.Pod, error) { return f.w.Pods(short, "app=app") })
	if err == nil || !strings.Contains(err.Error(), "listing pods") {
		t.Fatalf("second Pods call: %v, want an error saying the pods could not be listed", err)
	}

	// The first call ends with its context, and says what it was waiting for.
	cancel()
	select {
	case err := <-first:
		if err == nil || !strings.Contains(err.Error(), `listing pods in namespace "ns"`) {
			t.Fatalf("first Pods call: %v", err)
		}
	case <-time.After(guard):
		t.Fatal("the first Pods call did not end with its context")
	}
}

// An API server that never answers the pod list: the wait ends after Options.Timeout, on
// the injected clock, even with a context that never ends.
func TestPodsWaitIsBounded(t *testing.T) {
	f := newFixture(t, deployment("app", "1", nil))
	clk := clocktesting.NewFakeClock(time.Now())
	f.withOptions(Options{Clock: clk, Timeout: 10 * time.Second})
	ctx := startWatcher(t, f)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.kube.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		<-release
		return true, nil, errors.New("released")
	})

	done := make(chan error, 1)
	go func() {
		_, err := f.w.Pods(ctx, "app=app")
		done <- err
	}()
	deadline := time.Now().Add(guard)
	for !clk.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("Pods never started its bounded wait")
		}
		time.Sleep(time.Millisecond)
	}
	clk.Step(10 * time.Second)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no answer within 10s") {
			t.Fatalf("error = %v, want the timeout named", err)
		}
	case <-time.After(guard):
		t.Fatal("Pods did not return when its timeout passed")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor polls cond until it holds or guard passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With list but no watch on pods (a Role written for the original, which only listed)
// the runtime keeps working: it says so once, as a warning, and lists the pods at every
// call, so each call sees the pods as they are.
func TestPodsListOnly(t *testing.T) {
	f := newFixture(t, deployment("app", "1", nil))
	var logs syncBuffer
	f.withOptions(Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := startWatcher(t, f)
	f.createPod(t, "a")
	deny := &switchable{err: forbidden("watch", "pods")}
	deny.on.Store(true)
	f.kube.PrependWatchReactor("pods", deny.watch)
	lists := &switchable{}
	f.kube.PrependReactor("list", "pods", lists.react)

	const warning = "the API server refused to watch pods"
	waitFor(t, "the list-only warning", func() bool {
		pods, err := f.w.Pods(ctx, "app=app")
		if err != nil || podNames(pods) != "a" {
			t.Fatalf("pods %q, error %v", podNames(pods), err)
		}
		return strings.Contains(logs.String(), warning)
	})
	f.createPod(t, "b")
	before := lists.calls.Load()
	for range 3 {
		pods, err := f.w.Pods(ctx, "app=app")
		if err != nil || podNames(pods) != "a,b" {
			t.Fatalf("after a new pod: pods %q, error %v; want a,b at once (listed, not cached)", podNames(pods), err)
		}
	}
	// At least: a relist the stopped watch had already begun may add one.
	if n := lists.calls.Load() - before; n < 3 {
		t.Errorf("3 calls listed %d times, want one list each", n)
	}
	if n := strings.Count(logs.String(), warning); n != 1 {
		t.Errorf("the warning was logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("the message is not a warning:\n%s", logs.String())
	}
}

// A refused list of the target at start is an error at once that names it, not a wait
// of a minute.
func TestStartTargetListForbidden(t *testing.T) {
	f := newFixture(t, deployment("app", "1", nil))
	f.dyn.PrependReactor("list", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "", errors.New("cannot list"))
	})
	// Far below the start's own bound of a minute: failing only when it ends is too late.
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	err := f.w.Start(ctx)
	var perr *PermissionError
	if !errors.As(err, &perr) || perr.Verb != "list" || perr.Group != "apps" || perr.Resource != "deployments" || perr.Namespace != "ns" {
		t.Fatalf("error = %v, want a PermissionError for list deployments (apps) in ns", err)
	}
}

// With list but no watch on the target, snapshots list it every time and see changes
// at once.
func TestSnapshotTargetListOnly(t *testing.T) {
	f := newFixture(t, deployment("app", "1", map[string]any{"numPods": "3"}))
	var logs syncBuffer
	f.withOptions(Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	f.dyn.PrependWatchReactor("deployments", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "", errors.New("cannot watch"))
	})
	ctx := startWatcher(t, f)
	waitFor(t, "the list-only warning", func() bool {
		if _, err := f.w.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(logs.String(), "the API server refused to watch deployments.apps")
	})
	if _, err := f.dyn.Resource(deployments).Namespace("ns").Update(ctx, deployment("app", "2", map[string]any{"numPods": "5"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	snap, err := f.w.Snapshot(ctx)
	if err != nil || snap.Object.GetLabels()["numPods"] != "5" {
		t.Fatalf("snapshot after an update: %v, %v; want the update at once", snap, err)
	}
}

// A refused /scale read or patch names the subresource as an RBAC rule does.
func TestScaleForbidden(t *testing.T) {
	f := newFixture(t, deployment("app", "1", nil))
	ctx := startWatcher(t, f)
	f.scales.PrependReactor("*", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "app", errors.New("no"))
	})
	_, err := f.w.Snapshot(ctx)
	var perr *PermissionError
	if !errors.As(err, &perr) || perr.Verb != "get" || perr.Group != "apps" || perr.Resource != "deployments/scale" {
		t.Fatalf("Snapshot: %v", err)
	}
	err = f.w.SetReplicas(ctx, 3)
	if !errors.As(err, &perr) || perr.Verb != "patch" || perr.Group != "apps" || perr.Resource != "deployments/scale" {
		t.Fatalf("SetReplicas: %v", err)
	}
}

// Credentials the API server rejects (401) are named as such, not as a missing Role rule.
func TestPodsUnauthorized(t *testing.T) {
	f := newFixture(t, deployment("app", "1", nil))
	ctx := startWatcher(t, f)
	f.kube.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewUnauthorized("token expired")
	})
	_, err := within(t, "Pods with a rejected token", func() ([]*corev1.Pod, error) { return f.w.Pods(ctx, "app=app") })
	var perr *PermissionError
	if !errors.As(err, &perr) || !strings.Contains(err.Error(), "cannot list pods") || !strings.Contains(err.Error(), "401 Unauthorized") {
		t.Fatalf("error = %v, want a PermissionError saying the credentials were rejected", err)
	}
}
