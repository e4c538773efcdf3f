package restapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

// fakeKube answers TokenReviews for the token "good" (user alice, group devs) and
// SubjectAccessReviews from allow; it records what it was asked.
type fakeKube struct {
	*fake.Clientset
	mu        sync.Mutex
	tokenErr  error
	allow     func(authorizationv1.SubjectAccessReviewSpec) bool
	tokens    []string
	reviews   []authorizationv1.SubjectAccessReviewSpec
	reviewErr error
}

func newFakeKube() *fakeKube {
	f := &fakeKube{Clientset: fake.NewClientset()}
	f.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.tokens = append(f.tokens, tr.Spec.Token)
		if f.tokenErr != nil {
			return true, nil, f.tokenErr
		}
		out := tr.DeepCopy()
		if tr.Spec.Token == "good" {
			out.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{
				Username: "alice", UID: "u1", Groups: []string{"devs"},
				Extra: map[string]authenticationv1.ExtraValue{"scopes": {"a"}},
			}}
		} else {
			out.Status = authenticationv1.TokenReviewStatus{Error: "invalid bearer token"}
		}
		return true, out, nil
	})
	f.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.reviews = append(f.reviews, sar.Spec)
		if f.reviewErr != nil {
			return true, nil, f.reviewErr
		}
		out := sar.DeepCopy()
		out.Status.Allowed = f.allow(sar.Spec)
		if !out.Status.Allowed {
			out.Status.Reason = "no RBAC policy matched"
		}
		return true, out, nil
	})
	return f
}

func (f *fakeKube) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tokens), len(f.reviews)
}

func authHandler(t *testing.T, f *fakeKube, clk *clocktesting.FakePassiveClock) http.Handler {
	t.Helper()
	ka, err := NewKubeAuth(f.AuthenticationV1(), f.AuthorizationV1(), KubeAuthOptions{Namespace: "ns", Name: "my-cpa", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return NewHandler(&fakePipeline{}, Options{Auth: ka})
}

func do(h http.Handler, method, target, auth string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestAuthRefusals(t *testing.T) {
	f := newFakeKube()
	f.allow = func(authorizationv1.SubjectAccessReviewSpec) bool { return false }
	h := authHandler(t, f, clocktesting.NewFakePassiveClock(time.Unix(1000, 0)))
	tests := []struct {
		name, auth string
		code       int
		body       string
	}{
		{"no token", "", 401, `{"message":"Unauthorized: the request needs a bearer token (Authorization: Bearer \u003ctoken\u003e)","code":401}`},
		{"basic auth", "Basic YWxpY2U6cHc=", 401, `the request needs a bearer token`},
		{"empty bearer", "Bearer ", 401, `the request needs a bearer token`},
		{"bad token", "Bearer bad", 401, `{"message":"Unauthorized: the bearer token is not valid","code":401}`},
		{"forbidden", "bearer good", 403, `{"message":"Forbidden: user \"alice\" cannot get resource \"custompodautoscalers/metrics\" in API group \"custompodautoscaler.com\", name \"my-cpa\", in namespace \"ns\": no RBAC policy matched","code":403}`},
	}
	for _, tt := range tests {
		rec := do(h, http.MethodGet, "/api/v1/metrics", tt.auth)
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("%s: = %d %s, want %d %s", tt.name, rec.Code, rec.Body, tt.code, tt.body)
		}
		if tt.code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tt.name)
		}
	}
}

// The SubjectAccessReview asks about the CustomPodAutoscaler: get on
// custompodautoscalers/metrics for GET /metrics, create on custompodautoscalers/evaluation
// for POST /evaluation (dry run or not), for the user the TokenReview returned.
func TestAuthAttributesAndCache(t *testing.T) {
	f := newFakeKube()
	f.allow = func(s authorizationv1.SubjectAccessReviewSpec) bool {
		return s.ResourceAttributes.Subresource == "metrics" || s.ResourceAttributes.Verb == "create"
	}
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	h := authHandler(t, f, clk)
	if rec := do(h, http.MethodGet, "/api/v1/metrics?dry_run=true", "Bearer good"); rec.Code != 200 {
		t.Fatalf("GET metrics = %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, http.MethodPost, "/api/v1/evaluation?dry_run=true", "Bearer good"); rec.Code != 200 {
		t.Fatalf("POST evaluation = %d %s", rec.Code, rec.Body)
	}
	want := []authorizationv1.ResourceAttributes{
		{Namespace: "ns", Verb: "get", Group: "custompodautoscaler.com", Version: "v1", Resource: "custompodautoscalers", Subresource: "metrics", Name: "my-cpa"},
		{Namespace: "ns", Verb: "create", Group: "custompodautoscaler.com", Version: "v1", Resource: "custompodautoscalers", Subresource: "evaluation", Name: "my-cpa"},
	}
	if len(f.reviews) != 2 {
		t.Fatalf("%d SubjectAccessReviews, want 2", len(f.reviews))
	}
	for i, r := range f.reviews {
		if *r.ResourceAttributes != want[i] {
			t.Errorf("review %d attributes %+v, want %+v", i, *r.ResourceAttributes, want[i])
		}
		if r.User != "alice" || r.UID != "u1" || len(r.Groups) != 1 || r.Groups[0] != "devs" || r.Extra["scopes"][0] != "a" {
			t.Errorf("review %d subject %+v, want alice from the TokenReview", i, r)
		}
	}

	// Within the cache TTLs the API server is not asked again; after them it is.
	do(h, http.MethodGet, "/api/v1/metrics", "Bearer good")
	do(h, http.MethodGet, "/api/v1/metrics", "Bearer bad")
	do(h, http.MethodGet, "/api/v1/metrics", "Bearer bad")
	if tokens, reviews := f.counts(); tokens != 2 || reviews != 2 {
		t.Fatalf("%d TokenReviews and %d SubjectAccessReviews, want 2 and 2 (cached)", tokens, reviews)
	}
	clk.SetTime(clk.Now().Add(3 * time.Minute))
	do(h, http.MethodGet, "/api/v1/metrics", "Bearer good")
	if tokens, reviews := f.counts(); tokens != 3 || reviews != 3 {
		t.Fatalf("%d TokenReviews and %d SubjectAccessReviews after the TTLs, want 3 and 3", tokens, reviews)
	}
}

// When the API server cannot answer, the request is refused with 503 and the reason
// (e.g. the runtime lacks the RBAC for the reviews); nothing runs and nothing is cached.
func TestAuthUnavailable(t *testing.T) {
	f := newFakeKube()
	f.allow = func(authorizationv1.SubjectAccessReviewSpec) bool { return true }
	f.tokenErr = errors.New(`tokenreviews.authentication.k8s.io is forbidden: User "system:serviceaccount:ns:my-cpa" cannot create resource "tokenreviews"`)
	p := &fakePipeline{}
	ka, err := NewKubeAuth(f.AuthenticationV1(), f.AuthorizationV1(), KubeAuthOptions{Namespace: "ns", Name: "my-cpa"})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(p, Options{Auth: ka})
	rec := do(h, http.MethodPost, "/api/v1/evaluation", "Bearer good")
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "cannot create resource") || len(p.runTypes) != 0 {
		t.Fatalf("= %d %s (pipeline ran %d times), want 503 naming the TokenReview error", rec.Code, rec.Body, len(p.runTypes))
	}
	f.mu.Lock()
	f.tokenErr, f.reviewErr = nil, errors.New("connection refused")
	f.mu.Unlock()
	rec = do(h, http.MethodPost, "/api/v1/evaluation", "Bearer good")
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "SubjectAccessReview failed: connection refused") {
		t.Fatalf("= %d %s, want 503 naming the SubjectAccessReview error", rec.Code, rec.Body)
	}
	f.mu.Lock()
	f.reviewErr = nil
	f.mu.Unlock()
	if rec = do(h, http.MethodPost, "/api/v1/evaluation", "Bearer good"); rec.Code != 200 || len(p.runTypes) != 1 {
		t.Fatalf("= %d %s once the API server answers, want 200", rec.Code, rec.Body)
	}
}

func TestNewKubeAuthNeedsName(t *testing.T) {
	f := newFakeKube()
	if _, err := NewKubeAuth(f.AuthenticationV1(), f.AuthorizationV1(), KubeAuthOptions{Namespace: "ns"}); err == nil || !strings.Contains(err.Error(), "name") {
		t.Fatalf("error = %v, want one about the missing name", err)
	}
}
