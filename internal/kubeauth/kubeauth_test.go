package kubeauth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
)

// The end-to-end behaviour (reviews, caching, statuses) is tested through its users:
// internal/restapi's auth tests and the operator's metrics filter tests.

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		header string
		token  string
		ok     bool
	}{
		{"", "", false},
		{"Bearer abc", "abc", true},
		{"bearer  abc ", "abc", true},
		{"Basic YWxpY2U6eA==", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		if token, ok := BearerToken(r); token != tc.token || ok != tc.ok {
			t.Errorf("Authorization %q: %q, %v; want %q, %v", tc.header, token, ok, tc.token, tc.ok)
		}
	}
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		attrs Attributes
		want  string
	}{
		{Attributes{NonResource: &authorizationv1.NonResourceAttributes{Verb: "get", Path: "/metrics"}}, "get /metrics"},
		{Attributes{Resource: &authorizationv1.ResourceAttributes{Verb: "create", Group: "g", Resource: "r", Subresource: "s", Name: "n", Namespace: "ns"}},
			`create resource "r/s" in API group "g", name "n", in namespace "ns"`},
	} {
		if got := describe(tc.attrs); got != tc.want {
			t.Errorf("describe = %q, want %q", got, tc.want)
		}
	}
}
