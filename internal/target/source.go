package target

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// PermissionError says which request the API server refused: the runtime's credentials
// lack a verb on a resource in a namespace (403), or are not accepted at all (401).
type PermissionError struct {
	Verb      string // list, watch, get, patch
	Group     string // the API group, "" for the core group
	Resource  string // as RBAC rules name it: "pods", "deployments/scale"
	Namespace string
	Err       error // the API server's answer
}

func (e *PermissionError) Error() string {
	if apierrors.IsUnauthorized(e.Err) {
		return fmt.Sprintf("cannot %s %s in namespace %q: the API server rejected the runtime's credentials (401 Unauthorized): %v",
			e.Verb, e.Resource, e.Namespace, e.Err)
	}
	return fmt.Sprintf("missing permission: cannot %s %s in namespace %q (the runtime's Role must allow verb %q on resource %q in API group %q): %v",
		e.Verb, e.Resource, e.Namespace, e.Verb, e.Resource, e.Group, e.Err)
}

func (e *PermissionError) Unwrap() error { return e.Err }

// isDenied reports whether err is the API server refusing the credentials or the request.
func isDenied(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err)
}

// denied wraps err in a PermissionError when the API server refused the request.
func denied(err error, verb string, gr schema.GroupResource, namespace string) error {
	if err != nil && isDenied(err) {
		return &PermissionError{Verb: verb, Group: gr.Group, Resource: gr.Resource, Namespace: namespace, Err: err}
	}
	return err
}

// listWatch are the raw list and watch calls of one source, selectors applied.
type listWatch struct {
	list  func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error)
	watch func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error)
	// client is asked whether it supports watch-list semantics (fake clients do not).
	client any
}

// source is one informer plus what its reflector's requests last reported. A refused
// list fails the wait for it at once (not after a timeout); a refused watch with an
// allowed list (a Role written for the original runtime, which only listed) makes the
// source list once per use instead of caching.
type source struct {
	gr        schema.GroupResource
	namespace string
	lw        listWatch
	informer  cache.SharedIndexInformer
	stop      context.CancelFunc
	clock     clock.Clock
	log       *slog.Logger
	timeout   time.Duration // bounds each direct list
	// listOnly is told, after a list succeeded, that the watch was refused.
	listOnly func(watchErr error)

	mu       sync.Mutex
	listErr  error         // the last list's error; nil after a successful list
	watchErr error         // the watch the API server refused, if it did
	polling  bool          // the informer is stopped; every use lists
	told     bool          // listOnly was called
	changed  chan struct{} // closed (and replaced) when listErr or watchErr change
}

func newSource(gr schema.GroupResource, namespace string, lw listWatch, example runtime.Object, clk clock.Clock, log *slog.Logger, timeout time.Duration, listOnly func(error)) *source {
	s := &source{gr: gr, namespace: namespace, lw: lw, clock: clk, log: log, timeout: timeout, listOnly: listOnly, changed: make(chan struct{})}
	s.informer = cache.NewSharedIndexInformerWithOptions(
		cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				obj, err := lw.list(ctx, o)
				s.recordList(err)
				return obj, err
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				w, err := lw.watch(ctx, o)
				// Only a 403 means list-only access; a 401 (bad credentials) fails the lists too.
				if err != nil && apierrors.IsForbidden(err) {
					s.recordWatchDenied(err)
				}
				return w, err
			},
		}, lw.client),
		example,
		cache.SharedIndexInformerOptions{ObjectDescription: gr.String()},
	)
	return s
}

// run starts the informer; it stops with ctx or shutdown.
func (s *source) run(ctx context.Context) error {
	if err := s.informer.SetTransform(stripManagedFields); err != nil {
		return err
	}
	// client-go's default handler logs every failed list or watch, every few seconds while
	// a permission is missing; the failures reach the cycles' errors instead.
	if err := s.informer.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		s.log.Debug("list or watch failed; retrying", "resource", s.gr.String(), "namespace", s.namespace, "error", err)
	}); err != nil {
		return err
	}
	ctx, s.stop = context.WithCancel(ctx)
	go s.informer.RunWithContext(ctx)
	return nil
}

func (s *source) shutdown() {
	if s.stop != nil {
		s.stop()
	}
}

func (s *source) recordList(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.listErr == nil {
		return
	}
	s.listErr = err
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *source) recordWatchDenied(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watchErr != nil {
		return
	}
	s.watchErr = err
	close(s.changed)
	s.changed = make(chan struct{})
}

// sourceState is a consistent copy of what a source's requests reported.
type sourceState struct {
	listErr, watchErr error
	polling           bool
	changed           <-chan struct{}
}

func (s *source) state() sourceState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sourceState{s.listErr, s.watchErr, s.polling, s.changed}
}

// errWatchDenied ends a wait: the source lists from now on.
var errWatchDenied = errors.New("watch denied")

// waitSynced waits, at most timeout and while ctx lasts, for the informer's first list.
// It returns a PermissionError as soon as a list is refused, and errWatchDenied when a
// watch is.
func (s *source) waitSynced(ctx context.Context, timeout time.Duration) error {
	synced := s.informer.HasSyncedChecker().Done()
	timer := s.clock.NewTimer(timeout)
	defer timer.Stop()
	for {
		st := s.state()
		switch {
		case st.watchErr != nil:
			return errWatchDenied
		case st.listErr != nil && isDenied(st.listErr):
			return denied(st.listErr, "list", s.gr, s.namespace)
		}
		select {
		case <-synced:
			return nil
		default:
		}
		select {
		case <-synced:
			return nil
		case <-st.changed:
		case <-ctx.Done():
			return s.notSynced(fmt.Sprintf("gave up: %v", context.Cause(ctx)), st.listErr)
		case <-timer.C():
			return s.notSynced(fmt.Sprintf("no answer within %s", timeout), st.listErr)
		}
	}
}

func (s *source) notSynced(why string, listErr error) error {
	if listErr != nil {
		return fmt.Errorf("listing %s in namespace %q: %s; last error: %w", s.gr, s.namespace, why, listErr)
	}
	return fmt.Errorf("listing %s in namespace %q: %s", s.gr, s.namespace, why)
}

// items returns the source's objects: from the watch cache once it has synced (waiting
// at most timeout for that), or from a list made now when the watch is refused.
func (s *source) items(ctx context.Context, timeout time.Duration) ([]any, error) {
	if s.state().polling {
		return s.poll(ctx)
	}
	err := s.waitSynced(ctx, timeout)
	if errors.Is(err, errWatchDenied) {
		s.startPolling()
		return s.poll(ctx)
	}
	if err != nil {
		return nil, err
	}
	// A list refused after the first one (the permission was revoked): the cache stops
	// being updated, so it must not be trusted.
	if st := s.state(); st.watchErr != nil {
		s.startPolling()
		return s.poll(ctx)
	} else if st.listErr != nil && isDenied(st.listErr) {
		return nil, denied(st.listErr, "list", s.gr, s.namespace)
	}
	return s.informer.GetStore().List(), nil
}

// startPolling stops the informer, whose reflector would otherwise list again and again
// for a watch that is refused.
func (s *source) startPolling() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.polling {
		s.polling = true
		s.shutdown()
	}
}

// poll lists now, and tells listOnly the first time that works: only then is the
// access list-only (a refused watch may come with a refused list).
func (s *source) poll(ctx context.Context) ([]any, error) {
	items, err := s.listNow(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	tell := !s.told && s.listOnly != nil
	s.told = true
	watchErr := s.watchErr
	s.mu.Unlock()
	if tell {
		s.listOnly(watchErr)
	}
	return items, nil
}

// listNow lists the source's objects with one bounded request.
func (s *source) listNow(ctx context.Context) ([]any, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	list, err := s.lw.list(ctx, metav1.ListOptions{})
	if err != nil {
		if isDenied(err) {
			return nil, denied(err, "list", s.gr, s.namespace)
		}
		return nil, fmt.Errorf("listing %s in namespace %q: %w", s.gr, s.namespace, err)
	}
	objs, err := meta.ExtractListWithAlloc(list)
	if err != nil {
		return nil, fmt.Errorf("listing %s in namespace %q: %w", s.gr, s.namespace, err)
	}
	out := make([]any, 0, len(objs))
	for _, o := range objs {
		o, _ := stripManagedFields(o)
		out = append(out, o)
	}
	return out, nil
}
