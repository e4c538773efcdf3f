// Package store holds the latest values the adapter's collectors produced and answers the
// queries of the custom and external metrics APIs.
//
// # Ownership
//
// Every value belongs to one series: the values one collector returned for one metric of
// one HPA, named by the HPA (the Owner) and the metric's annotations.MetricKey. Set
// replaces a series' values as a whole, so a pod that is gone from a collector's latest
// result is gone from the store; Delete removes every series of an HPA when it goes.
//
// # Freshness
//
// A value is served while its age is below the store's TTL and never from the moment it
// reaches it: every query checks the age against the injected clock. The age counts from
// the value's Timestamp (the time the collector sampled it), or from the time it was Set
// when the Timestamp is zero or later than that. Sweep only frees the memory of expired
// values; correctness never waits for it. (The original checked the TTL only in its
// periodic garbage collection, so values were served up to TTL + GC interval late.)
//
// # Objects and resources
//
// Custom metric values are keyed by the GroupResource of the object they describe, the
// way the custom metrics API asks for them. Pods values are always about pods (core
// group, resource "pods"); an Object value's APIVersion and Kind are resolved by the
// Resolver the store was built with, normally a RESTMapper (see RESTMapperResolver), so
// any kind, built-in or custom, works. There is no table of kinds here.
//
// # Several HPAs, one metric
//
// Two HPAs may collect the same metric about the same object (or the same External
// metric with the same labels in one namespace). Both series are kept, each removed only
// with its own HPA, and a query returns one value per object (per label set for External
// metrics): the newest, by the time its age counts from (above); on a tie, the one of
// the owner that sorts first by namespace/name. Returning both would make the HPA count
// one series twice (it sums External series) or see an object twice.
//
// # Bounds
//
// The store holds only what configured collectors return: at most one series per HPA
// metric, each holding the values of that collector's last result, and values expire
// after the TTL. Its size is therefore bounded by the HPAs and the objects their
// collectors describe, never by what API clients ask for: queries only read.
//
// All methods are safe for concurrent use.
package store

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/custompodautoscaler/cpa/internal/adapter/annotations"
	"github.com/custompodautoscaler/cpa/internal/collector"
)

// DefaultTTL is the original's --metrics-ttl default.
const DefaultTTL = 15 * time.Minute

// PodsResource is the resource every Pods metric value is about.
var PodsResource = schema.GroupResource{Resource: "pods"}

// Owner is the HPA a series belongs to. External values are served in its namespace.
type Owner = types.NamespacedName

// Resolver maps an object's APIVersion and Kind to the resource the custom metrics API
// names it by, and tells whether that resource is namespaced.
type Resolver interface {
	Resource(apiVersion, kind string) (gr schema.GroupResource, namespaced bool, err error)
}

// RESTMapperResolver resolves kinds through a RESTMapper (in the adapter, a deferred
// discovery mapper, so custom resources installed later are found too).
func RESTMapperResolver(m meta.RESTMapper) Resolver { return mapperResolver{m} }

type mapperResolver struct{ m meta.RESTMapper }

func (r mapperResolver) Resource(apiVersion, kind string) (schema.GroupResource, bool, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return schema.GroupResource{}, false, err
	}
	var versions []string
	if gv.Version != "" {
		versions = []string{gv.Version}
	}
	mapping, err := r.m.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: kind}, versions...)
	if err != nil {
		return schema.GroupResource{}, false, err
	}
	return mapping.Resource.GroupResource(), mapping.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// Item is one value a query returns.
type Item struct {
	Owner Owner
	// Resource is the GroupResource of the object the value is about; zero for External.
	Resource schema.GroupResource
	// Metric is the metric's name.
	Metric string
	// Labels are the value's labels merged over the series' (see Set). Shared with the
	// store: do not modify.
	Labels map[string]string
	// Value is the collector's value; its Object.Namespace is the one the value is served
	// in, its Timestamp never zero. Its Labels are the collector's own, shared with the
	// store.
	Value collector.Value
}

// Store is the metric store. Build it with New.
type Store struct {
	ttl      time.Duration
	clock    clock.PassiveClock
	resolver Resolver

	mu     sync.RWMutex
	owners map[Owner]map[annotations.MetricKey]*series
	custom map[customKey]map[*series]struct{}
	ext    map[extKey]map[*series]struct{}
}

type customKey struct {
	gr        schema.GroupResource
	namespace string
	metric    string
}

type extKey struct{ namespace, metric string }

type objectKey struct {
	gr              schema.GroupResource
	namespace, name string
}

// series is the values of one Set call.
type series struct {
	owner    Owner
	metric   string
	external bool
	// entries holds the values, one per object of a Pods or Object series.
	entries []entry
	// objects indexes the entries of a Pods or Object series by object. (An index, not
	// the entries themselves: a map holds values this large out of line, one allocation
	// each.)
	objects map[objectKey]int
	// keys are the index keys the series is registered under.
	customKeys []customKey
}

type entry struct {
	// gr is the resource of the object a Pods or Object value is about.
	gr     schema.GroupResource
	value  collector.Value
	labels map[string]string
	// stamp is when the value's age counts from.
	stamp time.Time
	// labelsID identifies an External value's label set.
	labelsID string
}

// New returns an empty store that serves values younger than ttl (DefaultTTL if ttl <=
// 0), reading the time from clk and resolving Object values' kinds through r.
func New(ttl time.Duration, clk clock.PassiveClock, r Resolver) *Store {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Store{
		ttl:      ttl,
		clock:    clk,
		resolver: r,
		owners:   map[Owner]map[annotations.MetricKey]*series{},
		custom:   map[customKey]map[*series]struct{}{},
		ext:      map[extKey]map[*series]struct{}{},
	}
}

// TTL is the age from which a value is no longer served.
func (s *Store) TTL() time.Duration { return s.ttl }

// Set replaces the values of owner's metric key with values, the latest result of that
// metric's collector. key.Type says what the values are: Pods values are about pods
// (Object.Namespace defaults to the owner's), Object values about the object their
// Object names (resolved by the Resolver; a namespaced object's empty namespace defaults
// to the owner's), External values about nothing and are served in the owner's
// namespace. labels are the metric selector's matchLabels: a value's Labels are merged
// over them, and a query's metric selector (or External selector) is matched against the
// result. Set with no values removes the series.
//
// Values whose object cannot be resolved are left out and reported in the error; the
// others are stored. Set copies what it keeps, so the caller may reuse values.
func (s *Store) Set(owner Owner, key annotations.MetricKey, labels map[string]string, values []collector.Value) error {
	now := s.clock.Now()
	labels = maps.Clone(labels)
	ns := &series{owner: owner, metric: key.Name}
	var errs []error
	switch key.Type {
	case autoscalingv2.PodsMetricSourceType, autoscalingv2.ObjectMetricSourceType:
		errs = s.buildObjects(ns, owner, key.Type, labels, values, now)
	case autoscalingv2.ExternalMetricSourceType:
		ns.external = true
		ns.entries = make([]entry, 0, len(values))
		for _, v := range values {
			e := newEntry(v, labels, now)
			e.value.Object = collector.ObjectRef{Namespace: owner.Namespace}
			e.labelsID = labelsID(e.labels)
			ns.entries = append(ns.entries, e)
		}
	default:
		return fmt.Errorf("metric %s of %s: the store holds Pods, Object and External metrics, not %q", key, owner, key.Type)
	}
	err := errors.Join(errs...)
	if err != nil {
		err = fmt.Errorf("metric %s of %s: %w", key, owner, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(owner, key)
	if len(ns.entries) == 0 {
		return err
	}
	byKey := s.owners[owner]
	if byKey == nil {
		byKey = map[annotations.MetricKey]*series{}
		s.owners[owner] = byKey
	}
	byKey[key] = ns
	s.index(ns)
	return err
}

func (s *Store) buildObjects(ns *series, owner Owner, typ autoscalingv2.MetricSourceType, labels map[string]string, values []collector.Value, now time.Time) []error {
	ns.entries = make([]entry, 0, len(values))
	ns.objects = make(map[objectKey]int, len(values))
	type kind struct{ apiVersion, kind string }
	type resolution struct {
		gr         schema.GroupResource
		namespaced bool
		err        error
		skipped    int
		first      collector.ObjectRef
	}
	var (
		errs     []error
		nameless int
		// Each kind is resolved once per Set, failures included, so a result of many
		// values about an unknown kind costs one resolver call and one error.
		kinds  map[kind]*resolution
		failed []kind // in order of appearance
	)
	for _, v := range values {
		gr, namespaced := PodsResource, true
		if typ == autoscalingv2.ObjectMetricSourceType {
			k := kind{v.Object.APIVersion, v.Object.Kind}
			r := kinds[k]
			if r == nil {
				r = &resolution{}
				if s.resolver == nil {
					r.err = errors.New("no resolver for object kinds")
				} else {
					r.gr, r.namespaced, r.err = s.resolver.Resource(k.apiVersion, k.kind)
				}
				if kinds == nil {
					kinds = map[kind]*resolution{}
				}
				kinds[k] = r
			}
			if r.err != nil {
				if r.skipped++; r.skipped == 1 {
					r.first = v.Object
					failed = append(failed, k)
				}
				continue
			}
			gr, namespaced = r.gr, r.namespaced
		}
		e := newEntry(v, labels, now)
		switch {
		case !namespaced:
			e.value.Object.Namespace = ""
		case e.value.Object.Namespace == "":
			e.value.Object.Namespace = owner.Namespace
		}
		if e.value.Object.Name == "" {
			nameless++
			continue
		}
		e.gr = gr
		k := objectKey{gr: gr, namespace: e.value.Object.Namespace, name: e.value.Object.Name}
		if i, dup := ns.objects[k]; dup {
			if ns.entries[i].stamp.Before(e.stamp) {
				ns.entries[i] = e
			}
			continue // two values about one object in one result: keep the newest
		}
		ns.objects[k] = len(ns.entries)
		ns.entries = append(ns.entries, e)
	}
	for _, k := range failed {
		r := kinds[k]
		errs = append(errs, fmt.Errorf("%d value(s) about %s %s (the first %s/%s) left out: resolving the kind: %w",
			r.skipped, k.apiVersion, k.kind, r.first.Namespace, r.first.Name, r.err))
	}
	if nameless > 0 {
		errs = append(errs, fmt.Errorf("%d %s value(s) naming no object left out", nameless, typ))
	}
	return errs
}

func newEntry(v collector.Value, seriesLabels map[string]string, now time.Time) entry {
	e := entry{value: v, stamp: v.Timestamp}
	if e.stamp.IsZero() || e.stamp.After(now) {
		e.stamp = now
	}
	if v.Timestamp.IsZero() {
		e.value.Timestamp = now
	}
	e.value.Labels = maps.Clone(v.Labels)
	switch {
	case len(v.Labels) == 0:
		e.labels = seriesLabels
	case len(seriesLabels) == 0:
		e.labels = e.value.Labels
	default:
		e.labels = maps.Clone(seriesLabels)
		maps.Copy(e.labels, v.Labels)
	}
	return e
}

// labelsID encodes a label set unambiguously, whatever its keys and values hold.
func labelsID(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(l))
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(strconv.Itoa(len(k)))
		b.WriteByte(':')
		b.WriteString(k)
		b.WriteString(strconv.Itoa(len(l[k])))
		b.WriteByte(':')
		b.WriteString(l[k])
	}
	return b.String()
}

// index registers a series under its query keys; s.mu is held.
func (s *Store) index(ser *series) {
	if ser.external {
		k := extKey{namespace: ser.owner.Namespace, metric: ser.metric}
		addTo(s.ext, k, ser)
		return
	}
	ser.customKeys = ser.customKeys[:0]
	for ok := range ser.objects {
		k := customKey{gr: ok.gr, namespace: ok.namespace, metric: ser.metric}
		if !slices.Contains(ser.customKeys, k) {
			ser.customKeys = append(ser.customKeys, k)
			addTo(s.custom, k, ser)
		}
	}
}

func addTo[K comparable](m map[K]map[*series]struct{}, k K, ser *series) {
	set := m[k]
	if set == nil {
		set = map[*series]struct{}{}
		m[k] = set
	}
	set[ser] = struct{}{}
}

func removeFrom[K comparable](m map[K]map[*series]struct{}, k K, ser *series) {
	if set := m[k]; set != nil {
		delete(set, ser)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

// unindex removes a series from the query keys; s.mu is held.
func (s *Store) unindex(ser *series) {
	if ser.external {
		removeFrom(s.ext, extKey{namespace: ser.owner.Namespace, metric: ser.metric}, ser)
		return
	}
	for _, k := range ser.customKeys {
		removeFrom(s.custom, k, ser)
	}
}

// Delete removes every series of owner.
func (s *Store) Delete(owner Owner) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ser := range s.owners[owner] {
		s.unindex(ser)
	}
	delete(s.owners, owner)
}

// DeleteMetric removes one series of owner (its collector was removed while the HPA
// stays).
func (s *Store) DeleteMetric(owner Owner, key annotations.MetricKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(owner, key)
}

// removeLocked drops one series of owner, and the owner when it has none left; s.mu is
// held.
func (s *Store) removeLocked(owner Owner, key annotations.MetricKey) {
	byKey := s.owners[owner]
	if ser := byKey[key]; ser != nil {
		s.unindex(ser)
		delete(byKey, key)
	}
	if byKey != nil && len(byKey) == 0 {
		delete(s.owners, owner)
	}
}

// Sweep frees expired values and returns how many it removed. The adapter calls it
// periodically; queries never serve expired values whether or not it ran.
func (s *Store) Sweep() int {
	deadline := s.clock.Now().Add(-s.ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	removed := 0
	for owner, byKey := range s.owners {
		for key, ser := range byKey {
			n := ser.expire(deadline)
			if n == 0 {
				continue
			}
			removed += n
			s.unindex(ser)
			if len(ser.entries) == 0 {
				delete(byKey, key)
				continue
			}
			s.index(ser)
		}
		if len(byKey) == 0 {
			delete(s.owners, owner)
		}
	}
	return removed
}

// expire drops the values stamped at or before deadline and returns how many.
func (ser *series) expire(deadline time.Time) int {
	before := len(ser.entries)
	ser.entries = slices.DeleteFunc(ser.entries, func(e entry) bool { return !e.stamp.After(deadline) })
	n := before - len(ser.entries)
	if n > 0 && ser.objects != nil {
		clear(ser.objects)
		for i := range ser.entries {
			o := ser.entries[i].value.Object
			ser.objects[objectKey{gr: ser.entries[i].gr, namespace: o.Namespace, name: o.Name}] = i
		}
	}
	return n
}

// Len returns the number of values held, expired ones included until Sweep.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, byKey := range s.owners {
		for _, ser := range byKey {
			n += len(ser.entries)
		}
	}
	return n
}

// newer reports whether candidate a wins over b (see the package documentation).
func newer(a, b *series, ea, eb *entry) bool {
	if c := ea.stamp.Compare(eb.stamp); c != 0 {
		return c > 0
	}
	if c := cmp.Compare(a.owner.Namespace, b.owner.Namespace); c != 0 {
		return c < 0
	}
	return a.owner.Name < b.owner.Name
}

func item(ser *series, gr schema.GroupResource, e *entry) Item {
	return Item{Owner: ser.owner, Resource: gr, Metric: ser.metric, Labels: e.labels, Value: e.value}
}

func matches(sel labels.Selector, l map[string]string) bool {
	return sel == nil || sel.Empty() || sel.Matches(labels.Set(l))
}

// Object returns the value of metric about the object namespace/name of resource gr
// ("" namespace for a cluster-scoped object) whose labels metricSelector matches (nil or
// empty: any), if a live one is held.
func (s *Store) Object(gr schema.GroupResource, namespace, name, metric string, metricSelector labels.Selector) (Item, bool) {
	deadline := s.clock.Now().Add(-s.ttl)
	ok := objectKey{gr: gr, namespace: namespace, name: name}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var (
		best  *series
		bestE *entry
	)
	for ser := range s.custom[customKey{gr: gr, namespace: namespace, metric: metric}] {
		i, found := ser.objects[ok]
		if !found {
			continue
		}
		e := &ser.entries[i]
		if !e.stamp.After(deadline) || !matches(metricSelector, e.labels) {
			continue
		}
		if best == nil || newer(ser, best, e, bestE) {
			best, bestE = ser, e
		}
	}
	if best == nil {
		return Item{}, false
	}
	return item(best, gr, bestE), true
}

// Objects returns the live values of metric about objects of resource gr in namespace
// whose name match accepts (nil: all) and whose labels metricSelector matches (nil or
// empty: any), one per object, sorted by object name. The store does not know object
// labels: a request's label selector is resolved by the caller, who lists the selected
// names. match runs under the store's read lock, so it must not block (the API
// provider passes nil and filters the result instead, since its listing may call the
// API server).
func (s *Store) Objects(gr schema.GroupResource, namespace, metric string, metricSelector labels.Selector, match func(name string) bool) []Item {
	deadline := s.clock.Now().Add(-s.ttl)
	s.mu.RLock()
	defer s.mu.RUnlock()
	set := s.custom[customKey{gr: gr, namespace: namespace, metric: metric}]
	if len(set) == 0 {
		return nil
	}
	type winner struct {
		ser *series
		e   *entry
	}
	var (
		out    []Item
		byName map[string]int // only needed when several series share the key
	)
	if len(set) > 1 {
		byName = map[string]int{}
	}
	winners := make([]winner, 0, 16)
	for ser := range set {
		for k, i := range ser.objects {
			e := &ser.entries[i]
			if k.gr != gr || k.namespace != namespace || !e.stamp.After(deadline) ||
				(match != nil && !match(k.name)) || !matches(metricSelector, e.labels) {
				continue
			}
			if byName != nil {
				if i, dup := byName[k.name]; dup {
					if newer(ser, winners[i].ser, e, winners[i].e) {
						winners[i] = winner{ser, e}
					}
					continue
				}
				byName[k.name] = len(winners)
			}
			winners = append(winners, winner{ser, e})
		}
	}
	out = make([]Item, len(winners))
	for i := range winners {
		out[i] = item(winners[i].ser, gr, winners[i].e)
	}
	slices.SortFunc(out, func(a, b Item) int { return strings.Compare(a.Value.Object.Name, b.Value.Object.Name) })
	return out
}

// External returns the live values of the External metric in namespace whose labels
// selector matches (nil or empty: all), one per label set, sorted by labels.
func (s *Store) External(namespace, metric string, selector labels.Selector) []Item {
	deadline := s.clock.Now().Add(-s.ttl)
	s.mu.RLock()
	defer s.mu.RUnlock()
	set := s.ext[extKey{namespace: namespace, metric: metric}]
	if len(set) == 0 {
		return nil
	}
	type winner struct {
		ser *series
		e   *entry
	}
	byID := map[string]winner{}
	for ser := range set {
		for i := range ser.entries {
			e := &ser.entries[i]
			if !e.stamp.After(deadline) || !matches(selector, e.labels) {
				continue
			}
			if w, dup := byID[e.labelsID]; dup && !newer(ser, w.ser, e, w.e) {
				continue
			}
			byID[e.labelsID] = winner{ser, e}
		}
	}
	ids := slices.Sorted(maps.Keys(byID))
	out := make([]Item, 0, len(ids))
	for _, id := range ids {
		w := byID[id]
		out = append(out, item(w.ser, schema.GroupResource{}, w.e))
	}
	return out
}

// CustomMetric names a custom metric some live value is held for, as ListAllMetrics
// reports it.
type CustomMetric struct {
	Resource   schema.GroupResource
	Namespaced bool
	Metric     string
}

// CustomMetrics lists the custom metrics held, sorted. It may include metrics whose
// values all expired since the last Sweep.
func (s *Store) CustomMetrics() []CustomMetric {
	s.mu.RLock()
	seen := make(map[CustomMetric]struct{}, len(s.custom))
	for k := range s.custom {
		seen[CustomMetric{Resource: k.gr, Namespaced: k.namespace != "", Metric: k.metric}] = struct{}{}
	}
	s.mu.RUnlock()
	return slices.SortedFunc(maps.Keys(seen), func(a, b CustomMetric) int {
		return cmp.Or(cmp.Compare(a.Resource.Group, b.Resource.Group), cmp.Compare(a.Resource.Resource, b.Resource.Resource),
			cmp.Compare(a.Metric, b.Metric), boolCompare(a.Namespaced, b.Namespaced))
	})
}

// ExternalMetrics lists the names of the External metrics held, sorted, with the same
// caveat as CustomMetrics.
func (s *Store) ExternalMetrics() []string {
	s.mu.RLock()
	seen := make(map[string]struct{}, len(s.ext))
	for k := range s.ext {
		seen[k.metric] = struct{}{}
	}
	s.mu.RUnlock()
	return slices.Sorted(maps.Keys(seen))
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
