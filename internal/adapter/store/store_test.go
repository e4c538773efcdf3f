package store

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/custompodautoscaler/cpa/internal/adapter/annotations"
	"github.com/custompodautoscaler/cpa/internal/collector"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// fakeResolver resolves "apiVersion/kind" from a table built by each test: the store
// itself has none.
type fakeResolver map[string]struct {
	gr         schema.GroupResource
	namespaced bool
}

func (f fakeResolver) Resource(apiVersion, kind string) (schema.GroupResource, bool, error) {
	r, ok := f[apiVersion+"/"+kind]
	if !ok {
		return schema.GroupResource{}, false, fmt.Errorf("no kind %s in %s", kind, apiVersion)
	}
	return r.gr, r.namespaced, nil
}

var (
	ingresses  = schema.GroupResource{Group: "networking.k8s.io", Resource: "ingresses"}
	widgets    = schema.GroupResource{Group: "example.com", Resource: "widgets"}
	clusterScs = schema.GroupResource{Group: "zalando.org", Resource: "clusterscalingschedules"}
	resolver   = fakeResolver{
		"networking.k8s.io/v1/Ingress":          {ingresses, true},
		"example.com/v1alpha1/Widget":           {widgets, true},
		"zalando.org/v1/ClusterScalingSchedule": {clusterScs, false},
	}
	hpaA = Owner{Namespace: "default", Name: "a"}
	hpaB = Owner{Namespace: "default", Name: "b"}
	hpaC = Owner{Namespace: "other", Name: "c"}
)

func podsKey(name string) annotations.MetricKey {
	return annotations.MetricKey{Type: autoscalingv2.PodsMetricSourceType, Name: name}
}

func objectMetric(name, kind, obj string) annotations.MetricKey {
	return annotations.MetricKey{Type: autoscalingv2.ObjectMetricSourceType, Name: name,
		Object: autoscalingv2.CrossVersionObjectReference{Kind: kind, Name: obj}}
}

func externalMetric(name, sel string) annotations.MetricKey {
	return annotations.MetricKey{Type: autoscalingv2.ExternalMetricSourceType, Name: name, Selector: sel}
}

func pod(name string, milli int64, ts time.Time) collector.Value {
	return collector.Value{Object: collector.ObjectRef{APIVersion: "v1", Kind: "Pod", Name: name},
		Value: *resource.NewMilliQuantity(milli, resource.DecimalSI), Timestamp: ts}
}

func obj(apiVersion, kind, ns, name string, milli int64, ts time.Time) collector.Value {
	return collector.Value{Object: collector.ObjectRef{APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: name},
		Value: *resource.NewMilliQuantity(milli, resource.DecimalSI), Timestamp: ts}
}

func ext(l map[string]string, milli int64, ts time.Time) collector.Value {
	return collector.Value{Labels: l, Value: *resource.NewMilliQuantity(milli, resource.DecimalSI), Timestamp: ts}
}

// set is one Set call of a test's history.
type set struct {
	at     time.Duration // since t0
	owner  Owner
	key    annotations.MetricKey
	labels map[string]string
	values []collector.Value
}

func newStore(t testing.TB, ttl time.Duration, history []set) (*Store, *clocktesting.FakePassiveClock) {
	t.Helper()
	clk := clocktesting.NewFakePassiveClock(t0)
	s := New(ttl, clk, resolver)
	for _, h := range history {
		clk.SetTime(t0.Add(h.at))
		if err := s.Set(h.owner, h.key, h.labels, h.values); err != nil {
			t.Fatalf("Set(%v, %v): %v", h.owner, h.key, err)
		}
	}
	return s, clk
}

// milli summarises items for comparison: object name or labels => milli-value @ owner.
func milli(items []Item) []string {
	var out []string
	for _, it := range items {
		id := it.Value.Object.Name
		if it.Resource.Empty() {
			id = labels.Set(it.Labels).String()
		}
		out = append(out, fmt.Sprintf("%s=%d@%s", id, it.Value.Value.MilliValue(), it.Owner.Name))
	}
	return out
}

func sel(t testing.TB, s string) labels.Selector {
	t.Helper()
	l, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestTTLOnRead(t *testing.T) {
	const ttl = time.Minute
	tests := []struct {
		name      string
		stamp     time.Duration // value timestamp since t0; -1 = zero timestamp
		setAt     time.Duration
		readAt    time.Duration
		wantFound bool
	}{
		{"fresh", 0, 0, 0, true},
		{"just below the TTL", 0, 0, ttl - time.Nanosecond, true},
		{"exactly the TTL", 0, 0, ttl, false},
		{"past the TTL", 0, 0, time.Hour, false},
		{"age counts from the sample, not the Set", 0, 30 * time.Second, ttl, false},
		{"zero timestamp counts from the Set", -1, 30 * time.Second, ttl, true},
		{"zero timestamp, TTL after the Set", -1, 30 * time.Second, ttl + 30*time.Second, false},
		{"a future timestamp does not extend life", 10 * time.Minute, 0, ttl, false},
		{"stored already expired", 0, ttl, ttl, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := t0.Add(tt.stamp)
			if tt.stamp < 0 {
				ts = time.Time{}
			}
			s, clk := newStore(t, ttl, []set{
				{at: tt.setAt, owner: hpaA, key: podsKey("rps"), values: []collector.Value{pod("p1", 1000, ts)}},
				{at: tt.setAt, owner: hpaA, key: objectMetric("hits", "Ingress", "web"),
					values: []collector.Value{obj("networking.k8s.io/v1", "Ingress", "default", "web", 5000, ts)}},
				{at: tt.setAt, owner: hpaA, key: externalMetric("queue", "q=jobs"), values: []collector.Value{ext(map[string]string{"q": "jobs"}, 7000, ts)}},
			})
			clk.SetTime(t0.Add(tt.readAt))
			_, got := s.Object(PodsResource, "default", "p1", "rps", nil)
			gotObj, _ := s.Object(ingresses, "default", "web", "hits", labels.Everything())
			all := s.Objects(PodsResource, "default", "rps", nil, nil)
			exts := s.External("default", "queue", nil)
			if got != tt.wantFound || (gotObj.Metric != "") != tt.wantFound || (len(all) == 1) != tt.wantFound || (len(exts) == 1) != tt.wantFound {
				t.Errorf("found pod %v, object %v, %d pods, %d external values; want found=%v", got, gotObj.Metric != "", len(all), len(exts), tt.wantFound)
			}
			if tt.wantFound && tt.stamp < 0 && !all[0].Value.Timestamp.Equal(t0.Add(tt.setAt)) {
				t.Errorf("zero timestamp served as %v, want the Set time %v", all[0].Value.Timestamp, t0.Add(tt.setAt))
			}
			// Reading never removes: only Sweep frees memory.
			if n := s.Len(); n != 3 {
				t.Errorf("Len after reads = %d, want 3", n)
			}
		})
	}
}

func TestSweep(t *testing.T) {
	const ttl = time.Minute
	s, clk := newStore(t, ttl, []set{
		{at: 30 * time.Second, owner: hpaA, key: podsKey("rps"), values: []collector.Value{pod("old", 1, t0), pod("new", 2, t0.Add(30*time.Second))}},
		{at: 0, owner: hpaA, key: externalMetric("queue", ""), values: []collector.Value{ext(map[string]string{"q": "a"}, 1, t0)}},
		{at: 30 * time.Second, owner: hpaB, key: externalMetric("queue", ""), values: []collector.Value{ext(map[string]string{"q": "a"}, 2, t0.Add(30*time.Second)), ext(map[string]string{"q": "b"}, 3, t0)}},
	})
	clk.SetTime(t0.Add(ttl))
	if n := s.Sweep(); n != 3 {
		t.Errorf("Sweep removed %d, want 3", n)
	}
	if n := s.Len(); n != 2 {
		t.Errorf("Len after Sweep = %d, want 2", n)
	}
	if diff := cmp.Diff([]string{"new=2@a"}, milli(s.Objects(PodsResource, "default", "rps", nil, nil))); diff != "" {
		t.Errorf("pods after Sweep (-want +got):\n%s", diff)
	}
	if got, ok := s.Object(PodsResource, "default", "new", "rps", nil); !ok || got.Value.Value.MilliValue() != 2 {
		t.Errorf("Object(new) after a partial Sweep = %v, %v; want 2m", got, ok)
	}
	if _, ok := s.Object(PodsResource, "default", "old", "rps", nil); ok {
		t.Error("Object(old) served after Sweep")
	}
	if diff := cmp.Diff([]string{"q=a=2@b"}, milli(s.External("default", "queue", nil))); diff != "" {
		t.Errorf("external after Sweep (-want +got):\n%s", diff)
	}
	if _, held := s.owners[hpaA][externalMetric("queue", "")]; held {
		t.Error("an emptied series is still held")
	}
	clk.SetTime(t0.Add(2 * ttl))
	if n := s.Sweep(); n != 2 || s.Len() != 0 || len(s.owners) != 0 || len(s.custom) != 0 || len(s.ext) != 0 {
		t.Errorf("second Sweep removed %d; left %d values, %d owners, %d custom keys, %d external keys; want 2 and all empty",
			n, s.Len(), len(s.owners), len(s.custom), len(s.ext))
	}
}

func TestReplaceAndDelete(t *testing.T) {
	three := []collector.Value{pod("p1", 1, t0), pod("p2", 2, t0), pod("p3", 3, t0)}
	tests := []struct {
		name    string
		history []set
		deleted []Owner
		want    []string // pods of metric rps in default
		wantExt []string // external queue in default
	}{
		{
			name:    "set",
			history: []set{{owner: hpaA, key: podsKey("rps"), values: three}},
			want:    []string{"p1=1@a", "p2=2@a", "p3=3@a"},
		},
		{
			name: "replace drops what the new result lacks",
			history: []set{
				{owner: hpaA, key: podsKey("rps"), values: three},
				{at: time.Second, owner: hpaA, key: podsKey("rps"), values: []collector.Value{pod("p3", 30, t0.Add(time.Second)), pod("p4", 40, t0.Add(time.Second))}},
			},
			want: []string{"p3=30@a", "p4=40@a"},
		},
		{
			name: "an empty result removes the series",
			history: []set{
				{owner: hpaA, key: podsKey("rps"), values: three},
				{owner: hpaA, key: podsKey("rps")},
			},
		},
		{
			name: "replacing one metric leaves the HPA's others",
			history: []set{
				{owner: hpaA, key: podsKey("rps"), values: three},
				{owner: hpaA, key: externalMetric("queue", ""), values: []collector.Value{ext(map[string]string{"q": "x"}, 1, t0)}},
				{owner: hpaA, key: externalMetric("queue", ""), values: []collector.Value{ext(map[string]string{"q": "y"}, 2, t0)}},
			},
			want:    []string{"p1=1@a", "p2=2@a", "p3=3@a"},
			wantExt: []string{"q=y=2@a"},
		},
		{
			name: "delete removes all of an HPA's values, only its",
			history: []set{
				{owner: hpaA, key: podsKey("rps"), values: three},
				{owner: hpaA, key: externalMetric("queue", ""), values: []collector.Value{ext(map[string]string{"q": "x"}, 1, t0)}},
				{owner: hpaB, key: podsKey("rps"), values: []collector.Value{pod("p9", 9, t0)}},
				{owner: hpaC, key: externalMetric("queue", ""), values: []collector.Value{ext(map[string]string{"q": "x"}, 1, t0)}},
			},
			deleted: []Owner{hpaA},
			want:    []string{"p9=9@b"},
		},
		{
			name: "delete of an unknown owner is a no-op",
			history: []set{
				{owner: hpaA, key: podsKey("rps"), values: three[:1]},
			},
			deleted: []Owner{hpaB, hpaC},
			want:    []string{"p1=1@a"},
		},
		{
			name: "two values about one pod in one result: the newest",
			history: []set{
				{owner: hpaA, key: podsKey("rps"), values: []collector.Value{pod("p1", 1, t0.Add(-time.Second)), pod("p1", 2, t0), pod("p1", 3, t0.Add(-2*time.Second))}},
			},
			want: []string{"p1=2@a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t, time.Minute, tt.history)
			for _, o := range tt.deleted {
				s.Delete(o)
			}
			if diff := cmp.Diff(tt.want, milli(s.Objects(PodsResource, "default", "rps", nil, nil))); diff != "" {
				t.Errorf("pods (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantExt, milli(s.External("default", "queue", nil))); diff != "" {
				t.Errorf("external (-want +got):\n%s", diff)
			}
			if tt.want == nil && tt.wantExt == nil && len(tt.deleted) == 0 {
				if len(s.owners) != 0 || len(s.custom) != 0 || len(s.ext) != 0 {
					t.Errorf("empty store still holds %d owners, %d custom keys, %d external keys", len(s.owners), len(s.custom), len(s.ext))
				}
			}
		})
	}
}

func TestDeleteMetric(t *testing.T) {
	s, _ := newStore(t, time.Minute, []set{
		{owner: hpaA, key: podsKey("rps"), values: []collector.Value{pod("p1", 1, t0)}},
		{owner: hpaA, key: podsKey("latency"), values: []collector.Value{pod("p1", 2, t0)}},
	})
	s.DeleteMetric(hpaA, podsKey("rps"))
	s.DeleteMetric(hpaB, podsKey("rps"))
	if _, ok := s.Object(PodsResource, "default", "p1", "rps", nil); ok {
		t.Error("deleted metric still served")
	}
	if _, ok := s.Object(PodsResource, "default", "p1", "latency", nil); !ok {
		t.Error("the HPA's other metric is gone")
	}
	s.DeleteMetric(hpaA, podsKey("latency"))
	if len(s.owners) != 0 || len(s.custom) != 0 {
		t.Errorf("store holds %d owners, %d custom keys after every metric was deleted", len(s.owners), len(s.custom))
	}
}

func TestExternalSelectors(t *testing.T) {
	jobs := map[string]string{"type": "prometheus", "queue": "jobs"}
	mails := map[string]string{"type": "prometheus", "queue": "mails"}
	history := []set{
		{owner: hpaA, key: externalMetric("queue-length", "queue=jobs,type=prometheus"), labels: jobs, values: []collector.Value{ext(nil, 10, t0)}},
		{owner: hpaA, key: externalMetric("queue-length", "queue=mails,type=prometheus"), labels: mails, values: []collector.Value{ext(nil, 20, t0)}},
		{owner: hpaA, key: externalMetric("queue-length", "region"), values: []collector.Value{
			ext(map[string]string{"region": "eu"}, 30, t0), ext(map[string]string{"region": "us"}, 40, t0)}},
		// Same metric name elsewhere: never mixed (the original's issue #229).
		{owner: hpaC, key: externalMetric("queue-length", "queue=jobs,type=prometheus"), labels: jobs, values: []collector.Value{ext(nil, 99, t0)}},
		// Value labels merged over the series' labels, the value's winning.
		{owner: hpaB, key: externalMetric("merged", "type=http"), labels: map[string]string{"type": "http", "zone": "a"},
			values: []collector.Value{ext(map[string]string{"zone": "b", "shard": "1"}, 50, t0)}},
	}
	tests := []struct {
		ns, metric, selector string
		want                 []string
	}{
		{"default", "queue-length", "", []string{"queue=jobs,type=prometheus=10@a", "queue=mails,type=prometheus=20@a", "region=eu=30@a", "region=us=40@a"}},
		{"default", "queue-length", "queue=jobs,type=prometheus", []string{"queue=jobs,type=prometheus=10@a"}},
		{"default", "queue-length", "queue in (jobs,mails)", []string{"queue=jobs,type=prometheus=10@a", "queue=mails,type=prometheus=20@a"}},
		{"default", "queue-length", "queue", []string{"queue=jobs,type=prometheus=10@a", "queue=mails,type=prometheus=20@a"}},
		{"default", "queue-length", "!queue", []string{"region=eu=30@a", "region=us=40@a"}},
		{"default", "queue-length", "region!=eu", []string{"queue=jobs,type=prometheus=10@a", "queue=mails,type=prometheus=20@a", "region=us=40@a"}},
		{"default", "queue-length", "queue=nothing", nil},
		{"other", "queue-length", "queue=jobs", []string{"queue=jobs,type=prometheus=99@c"}},
		{"nowhere", "queue-length", "", nil},
		{"default", "unknown", "", nil},
		{"default", "merged", "zone=b,type=http,shard=1", []string{"shard=1,type=http,zone=b=50@b"}},
		{"default", "merged", "zone=a", nil},
	}
	s, _ := newStore(t, time.Minute, history)
	for _, tt := range tests {
		t.Run(tt.ns+"/"+tt.metric+"{"+tt.selector+"}", func(t *testing.T) {
			if diff := cmp.Diff(tt.want, milli(s.External(tt.ns, tt.metric, sel(t, tt.selector)))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if got := s.External("default", "queue-length", nil); len(got) != 4 {
		t.Errorf("nil selector: %d values, want 4", len(got))
	}
}

// TestSameMetricTwoHPAs: both series are kept; a query serves the newest per object or
// label set; deleting one HPA leaves the other's.
func TestSameMetricTwoHPAs(t *testing.T) {
	q := map[string]string{"queue": "jobs"}
	tests := []struct {
		name     string
		history  []set
		deleted  []Owner
		readAt   time.Duration
		wantPods []string
		wantObj  string
		wantExt  []string
	}{
		{
			name: "newest wins",
			history: []set{
				{owner: hpaB, key: podsKey("rps"), values: []collector.Value{pod("p1", 1, t0), pod("p2", 2, t0)}},
				{at: time.Second, owner: hpaA, key: podsKey("rps"), values: []collector.Value{pod("p1", 10, t0.Add(time.Second))}},
				{at: time.Second, owner: hpaB, key: objectMetric("hits", "Ingress", "web"), values: []collector.Value{obj("networking.k8s.io/v1", "Ingress", "default", "web", 5, t0.Add(time.Second))}},
				{at: time.Second, owner: hpaA, key: objectMetric("hits", "Ingress", "web"), values: []collector.Value{obj("networking.k8s.io/v1", "Ingress", "default", "web", 6, t0)}},
				{at: time.Second, owner: hpaA, key: externalMetric("queue", "queue=jobs"), labels: q, values: []collector.Value{ext(nil, 100, t0)}},
				{at: 2 * time.Second, owner: hpaB, key: externalMetric("queue", "queue=jobs"), labels: q, values: []collector.Value{ext(nil, 200, t0.Add(2*time.Second))}},
			},
			wantPods: []string{"p1=10@a", "p2=2@b"},
			wantObj:  "web=5@b",
			wantExt:  []string{"queue=jobs=200@b"},
		},
		{
			name: "a tie goes to the owner sorting first",
			history: []set{
				{owner: hpaB, key: podsKey("rps"), values: []collector.Value{pod("p1", 2, t0)}},
				{owner: hpaA, key: podsKey("rps"), values: []collector.Value{pod("p1", 1, t0)}},
				{owner: hpaB, key: objectMetric("hits", "Ingress", "web"), values: []collector.Value{obj("networking.k8s.io/v1", "Ingress", "default", "web", 5, t0)}},
				{owner: hpaA, key: objectMetric("hits", "Ingress", "web"), values: []collector.Value{obj("networking.k8s.io/v1", "Ingress", "default", "web", 6, t0)}},
				{owner: hpaB, key: externalMetric("queue", "queue=jobs"), labels: q, values: []collector.Value{ext(nil, 200, t0)}},
				{owner: hpaA, key: externalMetric("queue", "queue=jobs"), labels: q, values: []collector.Value{ext(nil, 100, t0)}},
			},
			wantPods: []string{"p1=1@a"},
			wantObj:  "web=6@a",
			wantExt:  []string{"queue=jobs=100@a"},
		},
		{
			name: "the newest expired: the other is served",
			history: []set{
				{owner: hpaA, key: podsKey("rps"), values: []collector.Value{pod("p1", 1, t0)}},
				{at: 10 * time.Second, owner: hpaB, key: podsKey("rps"), values: []collector.Value{pod("p1", 2, t0.Add(10*time.Second))}},
				{at: 10 * time.Second, owner: hpaB, key: objectMetric("hits", "Ingress", "web"), values: []collector.Value{obj("networking.k8s.io/v1", "Ingress", "default", "web", 5, t0.Add(10*time.Second))}},
				{owner: hpaA, key: externalMetric("queue", "queue=jobs"), labels: q, values: []collector.Value{ext(nil, 100, t0)}},
				{at: 10 * time.Second, owner: hpaB, key: externalMetric("queue", "queue=jobs"), labels: q, values: []collector.Value{ext(nil, 200, t0.Add(10*time.Second))}},
			},
			readAt:   time.Minute, // hpa a's values are exactly a minute old
			wantPods: []string{"p1=2@b"},
			wantObj:  "web=5@b",
			wantExt:  []string{"queue=jobs=200@b"},
		},
		{
			name: "deleting the winner serves the other",
			history: []set{
				{owner: hpaA, key: podsKey("rps"), values: []collector.Value{pod("p1", 1, t0)}},
				{owner: hpaB, key: podsKey("rps"), values: []collector.Value{pod("p1", 2, t0.Add(time.Second))}},
				{owner: hpaA, key: objectMetric("hits", "Ingress", "web"), values: []collector.Value{obj("networking.k8s.io/v1", "Ingress", "default", "web", 6, t0)}},
				{owner: hpaA, key: externalMetric("queue", "queue=jobs"), labels: q, values: []collector.Value{ext(nil, 100, t0)}},
				{owner: hpaB, key: externalMetric("queue", "queue=jobs"), labels: q, values: []collector.Value{ext(nil, 200, t0.Add(time.Second))}},
			},
			deleted:  []Owner{hpaB},
			wantPods: []string{"p1=1@a"},
			wantObj:  "web=6@a",
			wantExt:  []string{"queue=jobs=100@a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clk := newStore(t, time.Minute, tt.history)
			clk.SetTime(t0.Add(tt.readAt))
			for _, o := range tt.deleted {
				s.Delete(o)
			}
			if diff := cmp.Diff(tt.wantPods, milli(s.Objects(PodsResource, "default", "rps", nil, nil))); diff != "" {
				t.Errorf("pods (-want +got):\n%s", diff)
			}
			for _, it := range s.Objects(PodsResource, "default", "rps", nil, nil) {
				one, ok := s.Object(PodsResource, "default", it.Value.Object.Name, "rps", nil)
				if !ok || one.Owner != it.Owner {
					t.Errorf("Object(%s) = %v, %v; Objects says %v", it.Value.Object.Name, one.Owner, ok, it.Owner)
				}
			}
			got, _ := s.Object(ingresses, "default", "web", "hits", nil)
			if g := milli([]Item{got}); got.Metric == "" && tt.wantObj != "" || got.Metric != "" && g[0] != tt.wantObj {
				t.Errorf("object = %v, want %s", g, tt.wantObj)
			}
			if diff := cmp.Diff(tt.wantExt, milli(s.External("default", "queue", nil))); diff != "" {
				t.Errorf("external (-want +got):\n%s", diff)
			}
		})
	}
}

func TestObjectsOfAnyKind(t *testing.T) {
	history := []set{
		{owner: hpaA, key: objectMetric("hits", "Ingress", "web"), values: []collector.Value{
			obj("networking.k8s.io/v1", "Ingress", "", "web", 1, t0)}}, // namespace from the HPA
		{owner: hpaA, key: objectMetric("depth", "Widget", "w1"), labels: map[string]string{"shard": "1"}, values: []collector.Value{
			obj("example.com/v1alpha1", "Widget", "default", "w1", 2, t0)}},
		{owner: hpaB, key: objectMetric("depth", "Widget", "w1"), labels: map[string]string{"shard": "2"}, values: []collector.Value{
			obj("example.com/v1alpha1", "Widget", "default", "w1", 3, t0.Add(-time.Second))}},
		{owner: hpaC, key: objectMetric("load", "ClusterScalingSchedule", "peak"), values: []collector.Value{
			obj("zalando.org/v1", "ClusterScalingSchedule", "other", "peak", 4, t0)}}, // cluster-scoped: namespace dropped
		{owner: hpaC, key: podsKey("rps"), values: []collector.Value{pod("p1", 5, t0)}}, // pods of the HPA's namespace
	}
	tests := []struct {
		name              string
		gr                schema.GroupResource
		ns, obj, metric   string
		selector          string
		want              string // "" = not found
		wantNamespaceSeen string
	}{
		{"ingress", ingresses, "default", "web", "hits", "", "web=1@a", "default"},
		{"custom resource", widgets, "default", "w1", "depth", "", "w1=2@a", "default"},
		{"custom resource, metric selector picks the other HPA's", widgets, "default", "w1", "depth", "shard=2", "w1=3@b", "default"},
		{"metric selector matching nothing", widgets, "default", "w1", "depth", "shard=3", "", ""},
		{"same name, other resource", ingresses, "default", "w1", "depth", "", "", ""},
		{"same name, other namespace", widgets, "other", "w1", "depth", "", "", ""},
		{"cluster-scoped", clusterScs, "", "peak", "load", "", "peak=4@c", ""},
		{"cluster-scoped, asked in a namespace", clusterScs, "other", "peak", "load", "", "", ""},
		{"pods", PodsResource, "other", "p1", "rps", "", "p1=5@c", "other"},
		{"pods of the group-less name only", schema.GroupResource{Group: "example.com", Resource: "pods"}, "other", "p1", "rps", "", "", ""},
	}
	s, _ := newStore(t, time.Minute, history)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := s.Object(tt.gr, tt.ns, tt.obj, tt.metric, sel(t, tt.selector))
			if !ok {
				if tt.want != "" {
					t.Errorf("not found, want %s", tt.want)
				}
				return
			}
			if g := milli([]Item{got})[0]; g != tt.want {
				t.Errorf("got %s, want %s", g, tt.want)
			}
			if got.Resource != tt.gr || got.Value.Object.Namespace != tt.wantNamespaceSeen || got.Metric != tt.metric {
				t.Errorf("item %+v: want resource %v, namespace %q, metric %q", got, tt.gr, tt.wantNamespaceSeen, tt.metric)
			}
		})
	}
	want := []CustomMetric{
		{Resource: PodsResource, Namespaced: true, Metric: "rps"},
		{Resource: widgets, Namespaced: true, Metric: "depth"},
		{Resource: ingresses, Namespaced: true, Metric: "hits"},
		{Resource: clusterScs, Metric: "load"},
	}
	if diff := cmp.Diff(want, s.CustomMetrics()); diff != "" {
		t.Errorf("CustomMetrics (-want +got):\n%s", diff)
	}
}

func TestObjectsBySelector(t *testing.T) {
	s, _ := newStore(t, time.Minute, []set{
		{owner: hpaA, key: podsKey("rps"), values: []collector.Value{pod("web-1", 1, t0), pod("web-2", 2, t0), pod("db-1", 3, t0)}},
		{owner: hpaA, key: podsKey("latency"), values: []collector.Value{pod("web-1", 9, t0)}},
	})
	// The API provider lists the pods the request's label selector selects and passes
	// their names.
	webPods := map[string]bool{"web-1": true, "web-2": true, "web-3": true}
	got := s.Objects(PodsResource, "default", "rps", nil, func(name string) bool { return webPods[name] })
	if diff := cmp.Diff([]string{"web-1=1@a", "web-2=2@a"}, milli(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := s.Objects(PodsResource, "default", "rps", nil, func(string) bool { return false }); len(got) != 0 {
		t.Errorf("nothing selected, got %v", milli(got))
	}
	if got := s.Objects(PodsResource, "other", "rps", nil, nil); got != nil {
		t.Errorf("other namespace, got %v", milli(got))
	}
}

func TestSetErrors(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(t0)
	s := New(0, clk, resolver)
	if s.TTL() != DefaultTTL {
		t.Errorf("TTL = %v, want the default %v", s.TTL(), DefaultTTL)
	}
	err := s.Set(hpaA, objectMetric("hits", "Ingress", "web"), nil, []collector.Value{
		obj("networking.k8s.io/v1", "Ingress", "default", "web", 1, t0),
		obj("unknown.io/v1", "Thing", "default", "t", 2, t0),
		obj("unknown.io/v1", "Thing", "default", "t2", 2, t0),
		obj("networking.k8s.io/v1", "Ingress", "default", "", 3, t0),
	})
	if err == nil {
		t.Fatal("no error for an unresolvable kind and a nameless object")
	}
	for _, want := range []string{"2 value(s) about unknown.io/v1 Thing (the first default/t) left out", "no kind Thing", "1 Object value(s) naming no object", "hits"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, ok := s.Object(ingresses, "default", "web", "hits", nil); !ok {
		t.Error("the resolvable value was not stored")
	}
	if err := s.Set(hpaA, annotations.MetricKey{Type: autoscalingv2.ResourceMetricSourceType, Name: "cpu"}, nil, nil); err == nil {
		t.Error("no error for a Resource metric")
	}
	noResolver := New(time.Minute, clk, nil)
	if err := noResolver.Set(hpaA, objectMetric("hits", "Ingress", "web"), nil, []collector.Value{obj("networking.k8s.io/v1", "Ingress", "default", "web", 1, t0)}); err == nil || !strings.Contains(err.Error(), "no resolver") {
		t.Errorf("error for an Object value without a resolver = %v", err)
	}
}

func TestSetCopies(t *testing.T) {
	s, _ := newStore(t, time.Minute, nil)
	l := map[string]string{"q": "a"}
	vals := []collector.Value{ext(l, 1, t0)}
	if err := s.Set(hpaA, externalMetric("queue", ""), nil, vals); err != nil {
		t.Fatal(err)
	}
	sl := map[string]string{"type": "http"}
	if err := s.Set(hpaB, externalMetric("other", ""), sl, []collector.Value{ext(nil, 1, t0)}); err != nil {
		t.Fatal(err)
	}
	sl["type"] = "changed"
	if diff := cmp.Diff([]string{"type=http=1@b"}, milli(s.External("default", "other", nil))); diff != "" {
		t.Errorf("store changed with the caller's labels (-want +got):\n%s", diff)
	}
	l["q"] = "changed"
	vals[0].Value = resource.MustParse("5")
	if diff := cmp.Diff([]string{"q=a=1@a"}, milli(s.External("default", "queue", nil))); diff != "" {
		t.Errorf("store changed with the caller's slice (-want +got):\n%s", diff)
	}
}

func TestListMetrics(t *testing.T) {
	s, _ := newStore(t, time.Minute, []set{
		{owner: hpaA, key: externalMetric("b", ""), values: []collector.Value{ext(nil, 1, t0)}},
		{owner: hpaC, key: externalMetric("a", ""), values: []collector.Value{ext(nil, 1, t0)}},
		{owner: hpaB, key: externalMetric("b", ""), values: []collector.Value{ext(nil, 1, t0)}},
	})
	if diff := cmp.Diff([]string{"a", "b"}, s.ExternalMetrics()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRESTMapperResolver(t *testing.T) {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Group: "example.com", Version: "v1alpha1", Kind: "Widget"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: "zalando.org", Version: "v1", Kind: "ClusterScalingSchedule"}, meta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, meta.RESTScopeNamespace)
	r := RESTMapperResolver(m)
	tests := []struct {
		apiVersion, kind string
		want             schema.GroupResource
		namespaced       bool
		wantErr          bool
	}{
		{"example.com/v1alpha1", "Widget", widgets, true, false},
		{"zalando.org/v1", "ClusterScalingSchedule", clusterScs, false, false},
		{"v1", "Pod", PodsResource, true, false},
		{"example.com/v2", "Widget", schema.GroupResource{}, false, true},
		{"example.com/v1alpha1", "Gadget", schema.GroupResource{}, false, true},
		{"a/b/c", "Widget", schema.GroupResource{}, false, true},
	}
	for _, tt := range tests {
		gr, namespaced, err := r.Resource(tt.apiVersion, tt.kind)
		if (err != nil) != tt.wantErr || gr != tt.want || namespaced != tt.namespaced {
			t.Errorf("Resource(%s, %s) = %v, %v, %v; want %v, %v, error %v", tt.apiVersion, tt.kind, gr, namespaced, err, tt.want, tt.namespaced, tt.wantErr)
		}
	}
}

// TestConcurrent runs writers, readers and sweeps together, for the race detector.
func TestConcurrent(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	s := New(time.Minute, clk, resolver)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := Owner{Namespace: "default", Name: fmt.Sprint("hpa", w)}
			for i := range 200 {
				vals := []collector.Value{pod(fmt.Sprint("p", i%7), int64(i), clk.Now()), pod("shared", int64(i), clk.Now())}
				if err := s.Set(owner, podsKey("rps"), nil, vals); err != nil {
					t.Error(err)
					return
				}
				if err := s.Set(owner, externalMetric("queue", ""), nil, []collector.Value{ext(map[string]string{"q": "a"}, 1, clk.Now())}); err != nil {
					t.Error(err)
					return
				}
				if i%50 == 0 {
					s.Delete(owner)
				}
			}
		}()
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				s.Objects(PodsResource, "default", "rps", nil, nil)
				s.Object(PodsResource, "default", "shared", "rps", nil)
				s.External("default", "queue", labels.Everything())
				s.CustomMetrics()
				s.ExternalMetrics()
				s.Len()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			clk.Step(time.Second)
			s.Sweep()
		}
	}()
	wg.Wait()
}

var errSink error

func BenchmarkStore(b *testing.B) {
	const (
		hpas       = 100
		podsPerHPA = 100 // 10k pod values
		extPerHPA  = 10  // 1k external values, one metric per namespace shared by 10 HPAs
	)
	build := func(b *testing.B) (*Store, [][]collector.Value) {
		clk := clocktesting.NewFakePassiveClock(t0)
		s := New(time.Minute, clk, resolver)
		perHPA := make([][]collector.Value, hpas)
		for h := range hpas {
			owner := Owner{Namespace: fmt.Sprint("ns", h%10), Name: fmt.Sprint("hpa", h)}
			vals := make([]collector.Value, podsPerHPA)
			for p := range podsPerHPA {
				vals[p] = pod(fmt.Sprintf("hpa%d-pod%d", h, p), int64(p), t0)
			}
			perHPA[h] = vals
			if err := s.Set(owner, podsKey("rps"), nil, vals); err != nil {
				b.Fatal(err)
			}
			ext := make([]collector.Value, extPerHPA)
			for e := range extPerHPA {
				ext[e] = collector.Value{Labels: map[string]string{"queue": fmt.Sprint("q", h, "-", e)}, Value: resource.MustParse("1"), Timestamp: t0}
			}
			if err := s.Set(owner, externalMetric("queue", ""), map[string]string{"type": "prometheus"}, ext); err != nil {
				b.Fatal(err)
			}
		}
		return s, perHPA
	}
	b.Run("Set/100-pods", func(b *testing.B) {
		s, perHPA := build(b)
		owner := Owner{Namespace: "ns3", Name: "hpa3"}
		b.ReportAllocs()
		for b.Loop() {
			errSink = s.Set(owner, podsKey("rps"), nil, perHPA[3])
		}
	})
	b.Run("Set/10k-pods", func(b *testing.B) {
		s, _ := build(b)
		big := make([]collector.Value, 0, hpas*podsPerHPA)
		for i := range hpas * podsPerHPA {
			big = append(big, pod(fmt.Sprint("big", i), int64(i), t0))
		}
		owner := Owner{Namespace: "big", Name: "big"}
		b.ReportAllocs()
		for b.Loop() {
			errSink = s.Set(owner, podsKey("rps"), nil, big)
		}
	})
	b.Run("Set/10-external", func(b *testing.B) {
		s, _ := build(b)
		owner := Owner{Namespace: "ns3", Name: "hpa3"}
		vals := make([]collector.Value, extPerHPA)
		for e := range vals {
			vals[e] = collector.Value{Labels: map[string]string{"queue": fmt.Sprint("q3-", e)}, Value: resource.MustParse("2"), Timestamp: t0}
		}
		b.ReportAllocs()
		for b.Loop() {
			errSink = s.Set(owner, externalMetric("queue", ""), map[string]string{"type": "prometheus"}, vals)
		}
	})
	b.Run("Object", func(b *testing.B) {
		s, _ := build(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := s.Object(PodsResource, "ns3", "hpa3-pod42", "rps", nil); !ok {
				b.Fatal("not found")
			}
		}
	})
	b.Run("Objects/1k-in-namespace-100-selected", func(b *testing.B) {
		s, _ := build(b)
		sel := make(map[string]bool, podsPerHPA)
		for p := range podsPerHPA {
			sel[fmt.Sprintf("hpa3-pod%d", p)] = true
		}
		match := func(n string) bool { return sel[n] }
		b.ReportAllocs()
		for b.Loop() {
			if got := s.Objects(PodsResource, "ns3", "rps", nil, match); len(got) != podsPerHPA {
				b.Fatalf("%d values", len(got))
			}
		}
	})
	b.Run("External/100-in-namespace-1-selected", func(b *testing.B) {
		s, _ := build(b)
		selector := labels.SelectorFromSet(labels.Set{"type": "prometheus", "queue": "q3-4"})
		b.ReportAllocs()
		for b.Loop() {
			if got := s.External("ns3", "queue", selector); len(got) != 1 {
				b.Fatalf("%d values", len(got))
			}
		}
	})
	b.Run("Sweep/11k-none-expired", func(b *testing.B) {
		s, _ := build(b)
		b.ReportAllocs()
		for b.Loop() {
			s.Sweep()
		}
	})
}
