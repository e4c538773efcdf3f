package kube

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func kubeconfig(t *testing.T, server string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	content := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "` + server + `"}}]
users: [{name: u, user: {token: secret}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRESTConfigOrder(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	flagPath := kubeconfig(t, "https://flag.example:6443")
	envPath := kubeconfig(t, "https://env.example:6443")

	t.Setenv("KUBECONFIG", envPath)
	cfg, err := RESTConfig(flagPath)
	if err != nil || cfg.Host != "https://flag.example:6443" {
		t.Fatalf("the flag must win: %v %v", cfg, err)
	}
	cfg, err = RESTConfig("")
	if err != nil || cfg.Host != "https://env.example:6443" {
		t.Fatalf("KUBECONFIG must be used: %v %v", cfg, err)
	}
	if _, err := RESTConfig(filepath.Join(t.TempDir(), "absent")); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Fatalf("a missing --kubeconfig must be an error naming it: %v", err)
	}
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "absent"))
	t.Setenv("HOME", t.TempDir())
	if _, err := RESTConfig(""); err == nil || !strings.Contains(err.Error(), "no cluster access") {
		t.Fatalf("no config at all must say so: %v", err)
	}
}

func TestRequestCounter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"NamespaceList","apiVersion":"v1","items":[]}`))
	}))
	defer srv.Close()
	cfg, err := RESTConfig(kubeconfig(t, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	var c RequestCounter
	c.Instrument(cfg)
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := client.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if c.Count() != 3 {
		t.Fatalf("counted %d requests, want 3", c.Count())
	}
}
