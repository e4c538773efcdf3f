package restapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/utils/clock"

	"github.com/custompodautoscaler/cpa/internal/kubeauth"
)

// The resource a request is authorized against: the CustomPodAutoscaler the runtime runs
// for, with the API's path as a subresource that the API server does not serve but RBAC
// rules can name ("custompodautoscalers/metrics", "custompodautoscalers/evaluation").
const (
	authGroup    = "custompodautoscaler.com"
	authVersion  = "v1"
	authResource = "custompodautoscalers"
)

// KubeAuth authenticates a request's bearer token with a TokenReview and authorizes the
// user with a SubjectAccessReview on the CustomPodAutoscaler the runtime runs for: verb
// get for GET /api/v1/metrics, create for POST /api/v1/evaluation (dry run or not), on
// the subresource named by the path's last element. Answers are cached briefly.
//
// The runtime's ServiceAccount needs create on tokenreviews and subjectaccessreviews
// (the ClusterRole system:auth-delegator).
type KubeAuth struct {
	reviewer  *kubeauth.Reviewer
	namespace string
	name      string
}

// KubeAuthOptions configure NewKubeAuth.
type KubeAuthOptions struct {
	// Namespace and Name are the CustomPodAutoscaler's.
	Namespace, Name string
	Clock           clock.PassiveClock
	Logger          *slog.Logger
}

// NewKubeAuth returns the Authorizer that asks the Kubernetes API.
func NewKubeAuth(tokens authenticationclient.TokenReviewsGetter, reviews authorizationclient.SubjectAccessReviewsGetter, opts KubeAuthOptions) (*KubeAuth, error) {
	if opts.Namespace == "" || opts.Name == "" {
		return nil, fmt.Errorf("REST API authorization needs the CustomPodAutoscaler's namespace and name, got namespace %q, name %q", opts.Namespace, opts.Name)
	}
	log := opts.Logger
	if log != nil {
		log = log.With("component", "REST API auth")
	}
	return &KubeAuth{reviewer: kubeauth.New(tokens, reviews, opts.Clock, log), namespace: opts.Namespace, name: opts.Name}, nil
}

// Authorize implements Authorizer.
func (a *KubeAuth) Authorize(ctx context.Context, r *http.Request) (int, string) {
	return a.reviewer.Check(ctx, r, kubeauth.Attributes{Resource: a.attributes(r)})
}

// attributes maps a request to what it does to the CustomPodAutoscaler.
func (a *KubeAuth) attributes(r *http.Request) *authorizationv1.ResourceAttributes {
	verb := "create"
	if r.Method == http.MethodGet {
		verb = "get"
	}
	return &authorizationv1.ResourceAttributes{
		Namespace:   a.namespace,
		Verb:        verb,
		Group:       authGroup,
		Version:     authVersion,
		Resource:    authResource,
		Subresource: strings.TrimPrefix(r.URL.Path, prefix+"/"),
		Name:        a.name,
	}
}
