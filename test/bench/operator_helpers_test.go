//go:build e2e

package bench

// Helpers of TestOperatorScenario: a tracker that follows the CustomPodAutoscalers and
// the objects the operator makes through watches, the operator's process (memory, Go
// heap from gctrace, CPU), and a scrape of its authenticated metrics endpoint.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

const (
	managedBySelector = "app.kubernetes.io/managed-by=custom-pod-autoscaler-operator"
	ownedByLabel      = "v1.custompodautoscaler.com/owned-by"
)

// Bits of the objects a CustomPodAutoscaler needs before it counts as provisioned.
const (
	hasServiceAccount = 1 << iota
	hasRole
	hasRoleBinding
	hasDeployment
	hasAll = hasServiceAccount | hasRole | hasRoleBinding | hasDeployment
)

type cpaState struct {
	objs               int
	generation, seen   int64 // metadata.generation, status.observedGeneration
	ready, available   bool  // condition Ready True; its Deployment available
	provisionedCounted bool
	readyCounted       bool
	availableCounted   bool
}

// milestone is the moment a count first reached n, with the operator's RSS then.
type milestone struct {
	done chan struct{}
	at   time.Time
	rss  int64
}

// tracker follows, through watches, every CustomPodAutoscaler of a namespace and the
// objects the operator makes for it, and records when (a) all are provisioned (the four
// objects exist and status.observedGeneration equals metadata.generation), (b) all are
// Ready, (c) all their Deployments are available.
type tracker struct {
	n   int
	pid int

	mu                               sync.Mutex
	states                           map[string]*cpaState
	nProvisioned, nReady, nAvailable int
	provisioned, ready, available    milestone
}

func newTracker(n, pid int) *tracker {
	return &tracker{
		n: n, pid: pid, states: map[string]*cpaState{},
		provisioned: milestone{done: make(chan struct{})},
		ready:       milestone{done: make(chan struct{})},
		available:   milestone{done: make(chan struct{})},
	}
}

// start runs the watches until ctx ends and waits for their first lists.
func (tr *tracker) start(ctx context.Context, t *testing.T, cs kubernetes.Interface, dc dynamic.Interface, ns string) {
	t.Helper()
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = managedBySelector }))
	objHandler := func(bit int) toolscache.ResourceEventHandlerFuncs {
		set := func(obj any, on bool) {
			o, ok := obj.(metav1.Object)
			if !ok {
				if d, isTomb := obj.(toolscache.DeletedFinalStateUnknown); isTomb {
					o, ok = d.Obj.(metav1.Object)
				}
				if !ok {
					return
				}
			}
			avail := false
			if d, isDeploy := o.(*appsv1.Deployment); isDeploy && on {
				avail = d.Status.AvailableReplicas >= 1
			}
			tr.update(o.GetLabels()[ownedByLabel], func(s *cpaState) {
				if on {
					s.objs |= bit
				} else {
					s.objs &^= bit
				}
				if bit == hasDeployment {
					s.available = avail
				}
			})
		}
		return toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { set(obj, true) },
			UpdateFunc: func(_, obj any) { set(obj, true) },
			DeleteFunc: func(obj any) { set(obj, false) },
		}
	}
	for inf, bit := range map[toolscache.SharedIndexInformer]int{
		f.Core().V1().ServiceAccounts().Informer(): hasServiceAccount,
		f.Rbac().V1().Roles().Informer():           hasRole,
		f.Rbac().V1().RoleBindings().Informer():    hasRoleBinding,
		f.Apps().V1().Deployments().Informer():     hasDeployment,
	} {
		if _, err := inf.AddEventHandler(objHandler(bit)); err != nil {
			t.Fatal(err)
		}
	}
	df := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dc, 0, ns, nil)
	cpaSet := func(obj any) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		seen, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
		ready := false
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			if m, _ := c.(map[string]any); m["type"] == "Ready" && m["status"] == "True" {
				ready = true
			}
		}
		tr.update(u.GetName(), func(s *cpaState) { s.generation, s.seen, s.ready = u.GetGeneration(), seen, ready })
	}
	if _, err := df.ForResource(cpaGVR).Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    cpaSet,
		UpdateFunc: func(_, obj any) { cpaSet(obj) },
	}); err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	df.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("watching %v: not synced", typ)
		}
	}
	for typ, ok := range df.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("watching %v: not synced", typ)
		}
	}
}

// update changes one resource's state and counts what it completes.
func (tr *tracker) update(name string, change func(*cpaState)) {
	if name == "" {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := tr.states[name]
	if s == nil {
		s = &cpaState{}
		tr.states[name] = s
	}
	change(s)
	step := func(now bool, counted *bool, count *int, m *milestone) {
		if now == *counted {
			return
		}
		*counted = now
		if now {
			*count++
		} else {
			*count--
		}
		if *count == tr.n && m.at.IsZero() {
			m.at = time.Now()
			m.rss, _ = procStatus(tr.pid, "VmRSS")
			close(m.done)
		}
	}
	step(s.objs == hasAll && s.generation > 0 && s.seen == s.generation, &s.provisionedCounted, &tr.nProvisioned, &tr.provisioned)
	step(s.ready, &s.readyCounted, &tr.nReady, &tr.ready)
	step(s.available, &s.availableCounted, &tr.nAvailable, &tr.available)
}

func (tr *tracker) counts() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return fmt.Sprintf("%d provisioned, %d Ready, %d available of %d", tr.nProvisioned, tr.nReady, tr.nAvailable, tr.n)
}

// wait blocks until the milestone or ctx ends, logging progress every 10 s.
func (tr *tracker) wait(ctx context.Context, t *testing.T, what string, m *milestone) bool {
	t.Helper()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-m.done:
			return true
		case <-ctx.Done():
			t.Errorf("waiting for %s: %v (%s)", what, ctx.Err(), tr.counts())
			return false
		case <-tick.C:
			t.Logf("waiting for %s: %s", what, tr.counts())
		}
	}
}

// procStatus reads a size field (kB) of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// operatorProcess is the running operator and what its output says about its Go heap
// (GODEBUG=gctrace=1: one line per collection with the heap left after it).
type operatorProcess struct {
	cmd  *exec.Cmd
	done chan struct{}

	mu                 sync.Mutex
	out                strings.Builder
	gcs                int
	liveMax, liveLast  int64 // heap after a collection, bytes
	metricsURL, scheme string
	httpClient         *http.Client
}

// gctrace: "gc 12 @3.2s 1%: ... ms cpu, 4->5->2 MB, 5 MB goal, ...": the third figure
// is the heap marked live.
var gcLine = regexp.MustCompile(`^gc \d+ @.* (\d+)->(\d+)->(\d+) MB`)

func (p *operatorProcess) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		if m := gcLine.FindStringSubmatch(line); m != nil {
			live, _ := strconv.ParseInt(m[3], 10, 64)
			p.gcs++
			p.liveLast = live << 20
			p.liveMax = max(p.liveMax, p.liveLast)
		} else if p.out.Len() < 1<<20 {
			p.out.WriteString(line)
			p.out.WriteByte('\n')
		}
		p.mu.Unlock()
	}
}

func (p *operatorProcess) heap() (gcs int, liveMax, liveLast int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gcs, p.liveMax, p.liveLast
}

func (p *operatorProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// supportsFlag tells whether the binary's usage lists the flag (an older build may not).
func supportsFlag(bin, flag string) bool {
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	return strings.Contains(string(out), "-"+flag+" ")
}

// metricsScraper makes a ServiceAccount in ns allowed to get /metrics (a ClusterRole
// with the non-resource URL, bound to it; both removed at cleanup) and returns its token.
func metricsScraper(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) string {
	t.Helper()
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "bench-scraper"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	name := "cpa-bench-metrics-" + ns
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "bench-scraper", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "bench-scraper", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// requestCounts scrapes the operator's rest_client_requests_total and sums it by method.
func (p *operatorProcess) requestCounts(ctx context.Context, token string) (map[string]int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metricsURL, nil)
	if err != nil {
		return nil, err
	}
	if token != "" && p.scheme == "https" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := p.httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: %s: %s", p.metricsURL, resp.Status, b)
	}
	counts := map[string]int{}
	method := regexp.MustCompile(`method="([A-Z]+)"`)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "rest_client_requests_total{") {
			continue
		}
		m := method.FindStringSubmatch(line)
		f := strings.Fields(line)
		if m == nil || len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", line, err)
		}
		counts[m[1]] += int(v)
	}
	return counts, sc.Err()
}

// tlsClient trusts pool only.
func tlsClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}
