//go:build e2e

package e2e

// The operator's metrics endpoint against the real API server: HTTPS with the certificate
// given by --metrics-cert-dir, and only for a token the API server authenticates
// (TokenReview) and authorizes for get on the non-resource URL /metrics
// (SubjectAccessReview): none 401, a stranger's 401, one without the rule 403, one with
// it 200.

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

func TestOperatorMetricsNeedAuthorizedToken(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, 2*time.Minute)
	cs := e.c.Client
	installCRD(t)

	// Two ServiceAccounts; a ClusterRole granting get /metrics bound to one of them.
	for _, sa := range []string{"scraper", "stranger"} {
		if _, err := cs.CoreV1().ServiceAccounts(e.ns).Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	name := "cpa-e2e-metrics-" + e.ns
	if _, err := cs.RbacV1().ClusterRoles().Create(e.ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.RbacV1().ClusterRoles().Delete(e.ctx, name, metav1.DeleteOptions{}) })
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(e.ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "scraper", Namespace: e.ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.RbacV1().ClusterRoleBindings().Delete(e.ctx, name, metav1.DeleteOptions{}) })
	token := func(sa string) string {
		tr, err := cs.CoreV1().ServiceAccounts(e.ns).CreateToken(e.ctx, sa, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}

	// The operator with the admin kubeconfig: it may create TokenReviews and
	// SubjectAccessReviews, as its ClusterRole grants.
	certDir := t.TempDir()
	pool := framework.WriteServingCert(t, certDir)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(framework.BuildBinary(t, "./cmd/custom-pod-autoscaler-operator"), "--kubeconfig", e.c.Kubeconfig,
		"--metrics-bind-address", addr, "--metrics-cert-dir", certDir,
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	cmd.Env = append(os.Environ(), "WATCH_NAMESPACE="+e.ns)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("operator output:\n%s", out.String())
		}
	})

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	get := func(tok string) (int, string, error) {
		req, err := http.NewRequestWithContext(e.ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
		if err != nil {
			return 0, "", err
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b), nil
	}
	// The endpoint listens once the manager starts.
	framework.Eventually(t, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		_, _, err := get("")
		return err == nil, fmt.Sprint(err)
	})

	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"not a token the API server issued", "not-a-token", http.StatusUnauthorized},
		{"a token without the rule", token("stranger"), http.StatusForbidden},
		{"a token with the rule", token("scraper"), http.StatusOK},
	} {
		code, body, err := get(tc.token)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if code != tc.want {
			t.Errorf("%s: status %d, want %d: %.300s", tc.name, code, tc.want, body)
		}
		if code == http.StatusOK && !strings.Contains(body, "rest_client_requests_total") {
			t.Errorf("%s: the body holds no client metrics: %.300s", tc.name, body)
		}
	}
}
