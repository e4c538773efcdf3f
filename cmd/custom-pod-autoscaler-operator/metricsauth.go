package main

import (
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	authorizationv1 "k8s.io/api/authorization/v1"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/custompodautoscaler/cpa/internal/kubeauth"
)

// metricsAuthFilter serves the metrics endpoint only to callers the API server vouches
// for: a TokenReview of the bearer token, then a SubjectAccessReview of the request's
// verb on its non-resource URL (get /metrics). It is what controller-runtime's
// filters.WithAuthenticationAndAuthorization does, with client-go alone (internal/kubeauth
// says why). The operator needs create on tokenreviews and subjectaccessreviews.
func metricsAuthFilter(cfg *rest.Config, hc *http.Client) (metricsserver.Filter, error) {
	authn, err := authenticationclient.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, err
	}
	authz, err := authorizationclient.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, err
	}
	a := newMetricsAuth(authn, authz)
	return func(log logr.Logger, next http.Handler) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if code, msg := a.check(r); code != 0 {
				log.V(1).Info("metrics request refused", "status", code, "reason", msg)
				http.Error(w, msg, code)
				return
			}
			next.ServeHTTP(w, r)
		}), nil
	}, nil
}

type metricsAuth struct{ reviewer *kubeauth.Reviewer }

func newMetricsAuth(authn authenticationclient.TokenReviewsGetter, authz authorizationclient.SubjectAccessReviewsGetter) *metricsAuth {
	return &metricsAuth{reviewer: kubeauth.New(authn, authz, nil, nil)}
}

// check returns 0 for a request to serve, else the HTTP status and message to refuse it.
func (a *metricsAuth) check(r *http.Request) (int, string) {
	attrs := &authorizationv1.NonResourceAttributes{Path: r.URL.Path, Verb: strings.ToLower(r.Method)}
	return a.reviewer.Check(r.Context(), r, kubeauth.Attributes{NonResource: attrs})
}
