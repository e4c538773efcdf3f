package restapi

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

// The resource a request is authorized against: the CustomPodAutoscaler the runtime runs
// for, with the API's path as a subresource that the API server does not serve but RBAC
// rules can name ("custompodautoscalers/metrics", "custompodautoscalers/evaluation").
const (
	authGroup    = "custompodautoscaler.com"
	authVersion  = "v1"
	authResource = "custompodautoscalers"
)

// Cache bounds. Successes are kept longer than refusals, so that a grant takes effect
// soon and a revocation within a minute, as with kube-rbac-proxy's defaults (scaled
// down). API errors are not cached.
const (
	authCacheSize       = 1024
	tokenTTL            = 2 * time.Minute
	tokenRejectedTTL    = 10 * time.Second
	decisionAllowedTTL  = time.Minute
	decisionDeniedTTL   = 10 * time.Second
	authReviewTimeout   = 10 * time.Second
	maxReasonInResponse = 256
)

// KubeAuth authenticates a request's bearer token with a TokenReview and authorizes the
// user with a SubjectAccessReview on the CustomPodAutoscaler the runtime runs for: verb
// get for GET /api/v1/metrics, create for POST /api/v1/evaluation (dry run or not), on
// the subresource named by the path's last element. Both answers are cached for a
// short while (bounded LRU caches keyed by a hash of the token and by the user).
//
// The runtime's ServiceAccount needs create on tokenreviews and subjectaccessreviews
// (the ClusterRole system:auth-delegator).
type KubeAuth struct {
	tokens    authenticationclient.TokenReviewInterface
	reviews   authorizationclient.SubjectAccessReviewInterface
	namespace string
	name      string
	log       *slog.Logger

	users     *cache.LRUExpireCache // sha256 of the token -> tokenResult
	decisions *cache.LRUExpireCache // JSON of the SAR spec -> decision
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
	clk := opts.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &KubeAuth{
		tokens:    tokens.TokenReviews(),
		reviews:   reviews.SubjectAccessReviews(),
		namespace: opts.Namespace,
		name:      opts.Name,
		log:       log,
		users:     cache.NewLRUExpireCacheWithClock(authCacheSize, clk),
		decisions: cache.NewLRUExpireCacheWithClock(authCacheSize, clk),
	}, nil
}

type tokenResult struct {
	ok   bool
	user authenticationv1.UserInfo
}

type decision struct {
	allowed bool
	reason  string
}

// Authorize implements Authorizer.
func (a *KubeAuth) Authorize(ctx context.Context, r *http.Request) (int, string) {
	token, ok := bearerToken(r)
	if !ok {
		return http.StatusUnauthorized, "Unauthorized: the request needs a bearer token (Authorization: Bearer <token>)"
	}
	ctx, cancel := context.WithTimeout(ctx, authReviewTimeout)
	defer cancel()
	user, err := a.authenticate(ctx, token)
	if err != nil {
		a.log.Error("REST API: TokenReview failed", "error", err)
		return http.StatusServiceUnavailable, "Cannot verify the bearer token: TokenReview failed: " + err.Error()
	}
	if !user.ok {
		return http.StatusUnauthorized, "Unauthorized: the bearer token is not valid"
	}
	attrs := a.attributes(r)
	d, err := a.authorize(ctx, user.user, attrs)
	if err != nil {
		a.log.Error("REST API: SubjectAccessReview failed", "user", user.user.Username, "error", err)
		return http.StatusServiceUnavailable, "Cannot check access: SubjectAccessReview failed: " + err.Error()
	}
	if !d.allowed {
		msg := fmt.Sprintf("Forbidden: user %q cannot %s resource %q in API group %q, name %q, in namespace %q",
			user.user.Username, attrs.Verb, attrs.Resource+"/"+attrs.Subresource, attrs.Group, attrs.Name, attrs.Namespace)
		if d.reason != "" {
			msg += ": " + clip.String(d.reason, maxReasonInResponse)
		}
		a.log.Info("REST API request forbidden", "user", user.user.Username, "verb", attrs.Verb, "subresource", attrs.Subresource)
		return http.StatusForbidden, msg
	}
	return 0, ""
}

// bearerToken reads "Authorization: Bearer <token>" (the scheme is case-insensitive).
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
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

func (a *KubeAuth) authenticate(ctx context.Context, token string) (tokenResult, error) {
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
		a.log.Debug("REST API: bearer token rejected", "reason", tr.Status.Error)
		a.users.Add(key, res, tokenRejectedTTL)
	}
	return res, nil
}

func (a *KubeAuth) authorize(ctx context.Context, u authenticationv1.UserInfo, attrs *authorizationv1.ResourceAttributes) (decision, error) {
	spec := authorizationv1.SubjectAccessReviewSpec{
		ResourceAttributes: attrs,
		User:               u.Username,
		Groups:             slices.Clone(u.Groups),
		UID:                u.UID,
	}
	if len(u.Extra) > 0 {
		spec.Extra = make(map[string]authorizationv1.ExtraValue, len(u.Extra))
		for k, v := range u.Extra {
			spec.Extra[k] = authorizationv1.ExtraValue(v)
		}
	}
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
	ttl := decisionDeniedTTL
	if d.allowed {
		ttl = decisionAllowedTTL
	}
	a.decisions.Add(key, d, ttl)
	return d, nil
}
