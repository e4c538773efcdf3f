// Package kubeauth lets an HTTP endpoint trust the Kubernetes API server for who may call
// it, as delegated authentication does in kube-rbac-proxy and controller-runtime's metrics
// filters: the request's bearer token is checked with a TokenReview, the user's
// permission with a SubjectAccessReview, and both answers are cached briefly.
//
// It uses client-go alone: k8s.io/apiserver's delegating authenticator would add its whole
// authentication stack (tens of MB of binary, over 10 MiB of memory) to a small process.
//
// The caller's ServiceAccount needs create on tokenreviews and subjectaccessreviews
// (the built-in ClusterRole system:auth-delegator).
package kubeauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/utils/clock"

	"github.com/custompodautoscaler/cpa/internal/clip"
)

// Cache bounds. Successes are kept longer than refusals, so that a grant takes effect
// soon and a revocation within a minute, as kube-rbac-proxy's defaults do (scaled down).
// API errors are not cached.
const (
	cacheSize         = 1024
	tokenTTL          = 2 * time.Minute
	tokenRejectedTTL  = 10 * time.Second
	allowedTTL        = time.Minute
	deniedTTL         = 10 * time.Second
	reviewTimeout     = 10 * time.Second
	maxReasonInAnswer = 256
)

// Attributes is what a request does: to a resource, or to a non-resource URL. Exactly one
// is set.
type Attributes struct {
	Resource    *authorizationv1.ResourceAttributes
	NonResource *authorizationv1.NonResourceAttributes
}

// Reviewer checks requests against the API server. It is safe for concurrent use.
type Reviewer struct {
	tokens  authenticationclient.TokenReviewInterface
	reviews authorizationclient.SubjectAccessReviewInterface
	log     *slog.Logger

	users     *cache.LRUExpireCache // sha256 of the token -> tokenResult
	decisions *cache.LRUExpireCache // JSON of the review's spec -> decision
}

// New returns a Reviewer; a nil clock is the real one, a nil logger discards.
func New(tokens authenticationclient.TokenReviewsGetter, reviews authorizationclient.SubjectAccessReviewsGetter, clk clock.PassiveClock, log *slog.Logger) *Reviewer {
	if clk == nil {
		clk = clock.RealClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reviewer{
		tokens:    tokens.TokenReviews(),
		reviews:   reviews.SubjectAccessReviews(),
		log:       log,
		users:     cache.NewLRUExpireCacheWithClock(cacheSize, clk),
		decisions: cache.NewLRUExpireCacheWithClock(cacheSize, clk),
	}
}

type tokenResult struct {
	ok   bool
	user authenticationv1.UserInfo
}

type decision struct {
	allowed bool
	reason  string
}

// Check authenticates r's bearer token and authorizes its user for attrs. It returns 0
// when the request may proceed, else the HTTP status (401, 403, or 503 when the API
// server could not answer) and a message for the response.
func (a *Reviewer) Check(ctx context.Context, r *http.Request, attrs Attributes) (int, string) {
	token, ok := BearerToken(r)
	if !ok {
		return http.StatusUnauthorized, "Unauthorized: the request needs a bearer token (Authorization: Bearer <token>)"
	}
	ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
	defer cancel()
	user, err := a.authenticate(ctx, token)
	if err != nil {
		a.log.Error("TokenReview failed", "error", err)
		return http.StatusServiceUnavailable, "Cannot verify the bearer token: TokenReview failed: " + err.Error()
	}
	if !user.ok {
		return http.StatusUnauthorized, "Unauthorized: the bearer token is not valid"
	}
	d, err := a.authorize(ctx, user.user, attrs)
	if err != nil {
		a.log.Error("SubjectAccessReview failed", "user", user.user.Username, "error", err)
		return http.StatusServiceUnavailable, "Cannot check access: SubjectAccessReview failed: " + err.Error()
	}
	if !d.allowed {
		msg := fmt.Sprintf("Forbidden: user %q cannot %s", user.user.Username, describe(attrs))
		if d.reason != "" {
			msg += ": " + clip.String(d.reason, maxReasonInAnswer)
		}
		a.log.Info("request forbidden", "user", user.user.Username, "request", describe(attrs))
		return http.StatusForbidden, msg
	}
	return 0, ""
}

// describe says what the attributes ask, for messages.
func describe(attrs Attributes) string {
	if ra := attrs.Resource; ra != nil {
		res := ra.Resource
		if ra.Subresource != "" {
			res += "/" + ra.Subresource
		}
		return fmt.Sprintf("%s resource %q in API group %q, name %q, in namespace %q", ra.Verb, res, ra.Group, ra.Name, ra.Namespace)
	}
	if na := attrs.NonResource; na != nil {
		return na.Verb + " " + na.Path
	}
	return "(nothing)"
}

// BearerToken reads "Authorization: Bearer <token>" (the scheme in any case).
func BearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

func (a *Reviewer) authenticate(ctx context.Context, token string) (tokenResult, error) {
	sum := sha256.Sum256([]byte(token))
	key := string(sum[:])
	if v, ok := a.users.Get(key); ok {
		return v.(tokenResult), nil
	}
	tr, err := a.tokens.Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return tokenResult{}, err
	}
	res := tokenResult{ok: tr.Status.Authenticated, user: tr.Status.User}
	if res.ok {
		a.users.Add(key, res, tokenTTL)
	} else {
		a.log.Debug("bearer token rejected", "reason", tr.Status.Error)
		a.users.Add(key, res, tokenRejectedTTL)
	}
	return res, nil
}

func (a *Reviewer) authorize(ctx context.Context, u authenticationv1.UserInfo, attrs Attributes) (decision, error) {
	spec := authorizationv1.SubjectAccessReviewSpec{
		ResourceAttributes:    attrs.Resource,
		NonResourceAttributes: attrs.NonResource,
		User:                  u.Username,
		Groups:                slices.Clone(u.Groups),
		UID:                   u.UID,
	}
	if len(u.Extra) > 0 {
		spec.Extra = make(map[string]authorizationv1.ExtraValue, len(u.Extra))
		for k, v := range u.Extra {
			spec.Extra[k] = authorizationv1.ExtraValue(v)
		}
	}
	// Everything the review is given is in the key: the UID tells a ServiceAccount
	// re-created under the same name from the old one; groups and extras can decide.
	keyJSON, err := json.Marshal(spec)
	if err != nil {
		return decision{}, err
	}
	key := string(keyJSON)
	if v, ok := a.decisions.Get(key); ok {
		return v.(decision), nil
	}
	sar, err := a.reviews.Create(ctx, &authorizationv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		return decision{}, err
	}
	d := decision{allowed: sar.Status.Allowed && !sar.Status.Denied, reason: sar.Status.Reason}
	if sar.Status.EvaluationError != "" && !d.allowed {
		d.reason = strings.TrimSpace(d.reason + " " + sar.Status.EvaluationError)
	}
	ttl := deniedTTL
	if d.allowed {
		ttl = allowedTTL
	}
	a.decisions.Add(key, d, ttl)
	return d, nil
}
