package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeReviews answers TokenReviews (token "good" is user alice, "viewer" is bob) and
// SubjectAccessReviews (alice may get /metrics), counting the calls.
func fakeReviews(t *testing.T, fail bool) (*fake.Clientset, *int) {
	t.Helper()
	cs := fake.NewClientset()
	calls := 0
	cs.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		if fail {
			return true, nil, errors.New("connection refused")
		}
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview).DeepCopy()
		switch tr.Spec.Token {
		case "good":
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: "alice", UID: "1"}}
		case "viewer":
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: "bob", UID: "2"}}
		}
		return true, tr, nil
	})
	cs.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		na := sar.Spec.NonResourceAttributes
		sar.Status.Allowed = sar.Spec.User == "alice" && na != nil && na.Path == "/metrics" && na.Verb == "get"
		return true, sar, nil
	})
	return cs, &calls
}

func TestMetricsAuth(t *testing.T) {
	cases := []struct {
		name   string
		header string
		fail   bool
		want   int
	}{
		{"no token", "", false, http.StatusUnauthorized},
		{"not a bearer token", "Basic YWxpY2U6eA==", false, http.StatusUnauthorized},
		{"unknown token", "Bearer bad", false, http.StatusUnauthorized},
		{"token without the rule", "Bearer viewer", false, http.StatusForbidden},
		{"token with the rule", "Bearer good", false, http.StatusOK},
		{"scheme in any case", "bearer good", false, http.StatusOK},
		{"the API server unreachable", "Bearer good", true, http.StatusServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs, _ := fakeReviews(t, tc.fail)
			a := newMetricsAuth(cs.AuthenticationV1(), cs.AuthorizationV1())
			r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			code, msg := a.check(r)
			if code == 0 {
				code = http.StatusOK
			}
			if code != tc.want {
				t.Errorf("status %d (%q), want %d", code, msg, tc.want)
			}
		})
	}
}

func TestMetricsAuthCachesAnswers(t *testing.T) {
	cs, calls := fakeReviews(t, false)
	a := newMetricsAuth(cs.AuthenticationV1(), cs.AuthorizationV1())
	for range 3 {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		r.Header.Set("Authorization", "Bearer good")
		if code, msg := a.check(r); code != 0 {
			t.Fatalf("status %d (%q), want served", code, msg)
		}
	}
	if *calls != 2 {
		t.Errorf("%d reviews for 3 scrapes with one token, want 2 (one TokenReview, one SubjectAccessReview)", *calls)
	}
	// Another path is another decision.
	r := httptest.NewRequest(http.MethodGet, "/other", nil)
	r.Header.Set("Authorization", "Bearer good")
	if code, _ := a.check(r); code != http.StatusForbidden {
		t.Errorf("GET /other: status %d, want 403", code)
	}
}
