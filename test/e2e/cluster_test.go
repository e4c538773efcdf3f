//go:build e2e

// Package e2e holds the end-to-end tests that run against the local cluster
// (hack/cluster/cluster.sh). Run them with `make e2e`.
package e2e

import (
	"context"
	"net"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

// The fake nodes run a Deployment's pods, each with a loopback IP, and the /scale
// subresource (what every autoscaler here uses) changes the number of pods.
func TestClusterDeploymentScales(t *testing.T) {
	t.Parallel()
	c := framework.Ensure(t)
	ns := framework.NewNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const name = "web"
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, framework.NewDeployment(name, 3), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Deployment: %v", err)
	}
	pods := framework.WaitForPodsRunning(ctx, t, ns, "app="+name, 3)
	for _, p := range pods {
		ip := net.ParseIP(p.Status.PodIP)
		if ip == nil || !ip.IsLoopback() {
			t.Errorf("pod %s has IP %q, want a loopback address (kwok --cidr 127.1.0.0/16)", p.Name, p.Status.PodIP)
		}
	}
	framework.WaitForReplicas(ctx, t, ns, name, 3)

	for _, n := range []int32{5, 1} {
		scale, err := c.Client.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting /scale: %v", err)
		}
		scale.Spec.Replicas = n
		if _, err := c.Client.AppsV1().Deployments(ns).UpdateScale(ctx, name, scale, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("updating /scale to %d: %v", n, err)
		}
		framework.WaitForReplicas(ctx, t, ns, name, n)
		framework.WaitForPodsRunning(ctx, t, ns, "app="+name, int(n))
	}
}

// StatefulSets, the other common scale target, work too.
func TestClusterStatefulSetScales(t *testing.T) {
	t.Parallel()
	c := framework.Ensure(t)
	ns := framework.NewNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const name = "db"
	if _, err := c.Client.AppsV1().StatefulSets(ns).Create(ctx, framework.NewStatefulSet(name, 2), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating StatefulSet: %v", err)
	}
	framework.WaitForPodsRunning(ctx, t, ns, "app="+name, 2)
	scale := &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       autoscalingv1.ScaleSpec{Replicas: 3},
	}
	if _, err := c.Client.AppsV1().StatefulSets(ns).UpdateScale(ctx, name, scale, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating /scale: %v", err)
	}
	framework.WaitForPodsRunning(ctx, t, ns, "app="+name, 3)
}

// A ServiceAccount token from the TokenRequest API authenticates: the runtime and the
// operator's autoscalers talk to the API with such tokens.
func TestClusterServiceAccountToken(t *testing.T) {
	t.Parallel()
	c := framework.Ensure(t)
	ns := framework.NewNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	expiry := int64(600)
	tr, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "default",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token for ServiceAccount %s/default: %v", ns, err)
	}
	cfg := rest.AnonymousClientConfig(c.Config)
	cfg.BearerToken = tr.Status.Token
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectReview with the token: %v", err)
	}
	if got, want := review.Status.UserInfo.Username, "system:serviceaccount:"+ns+":default"; got != want {
		t.Errorf("the token authenticates as %q, want %q", got, want)
	}
	// RBAC is on: the default ServiceAccount may not list pods.
	if _, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the default ServiceAccount listing pods: got error %v, want Forbidden (RBAC)", err)
	}
}
