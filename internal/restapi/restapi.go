// Package restapi serves the runtime's REST API: GET /api/v1/metrics and
// POST /api/v1/evaluation, with the paths, query parameters and error bodies of the
// original Custom Pod Autoscaler.
//
// Every request is bounded: at most Options.MaxRequests in flight (more get 429), each
// with a deadline (Options.RequestTimeout) on its work and on writing its response. The
// user logic a request runs shares the autoscaler's call slots (perPodConcurrency) with
// the scheduled loop, so parallel requests never start more processes than that.
// Optionally every request is authenticated and authorized against the Kubernetes API
// (see Auth).
package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/custompodautoscaler/cpa/internal/config"
	"github.com/custompodautoscaler/cpa/pkg/evaluate"
	"github.com/custompodautoscaler/cpa/pkg/metric"
)

// Pipeline is the autoscaler as the API uses it.
type Pipeline interface {
	Metrics(ctx context.Context, runType string) ([]*metric.ResourceMetric, error)
	Evaluate(ctx context.Context, runType string, dryRun bool) (*evaluate.Evaluation, error)
}

// Error is the body of every error response.
type Error struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
}

const prefix = "/api/v1"

// Defaults of Options.
const (
	DefaultMaxRequests    = 8
	DefaultRequestTimeout = 60 * time.Second
)

// Options tune NewHandler. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// MaxRequests bounds the requests in flight (waiting for a call slot or running);
	// more are refused with 429 Too Many Requests. 0 means DefaultMaxRequests.
	MaxRequests int
	// RequestTimeout bounds a request's work (its context ends then, which stops the user
	// logic it runs) and the writing of its response. 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Auth, if set, authenticates and authorizes every request.
	Auth Authorizer
}

// Authorizer decides whether a request may proceed. On refusal it returns the status
// code (401, 403, or 5xx when it could not decide) and the message to answer with.
type Authorizer interface {
	Authorize(ctx context.Context, r *http.Request) (code int, msg string)
}

// NewHandler returns the API's routes.
func NewHandler(p Pipeline, opts Options) http.Handler {
	h := &handler{p: p, log: opts.Logger, timeout: opts.RequestTimeout, auth: opts.Auth}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.timeout <= 0 {
		h.timeout = DefaultRequestTimeout
	}
	maxReq := opts.MaxRequests
	if maxReq <= 0 {
		maxReq = DefaultMaxRequests
	}
	h.inFlight = make(chan struct{}, maxReq)
	mux := http.NewServeMux()
	mux.HandleFunc(prefix+"/metrics", h.only(http.MethodGet, h.metrics))
	mux.HandleFunc(prefix+"/evaluation", h.only(http.MethodPost, h.evaluation))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Resource '%s' not found", r.URL.Path))
	})
	return mux
}

type handler struct {
	p        Pipeline
	log      *slog.Logger
	timeout  time.Duration
	auth     Authorizer
	inFlight chan struct{}
}

// only admits a request for one of the API's resources: the right method, a place among
// the requests in flight, then authorization; next runs under the request deadline.
func (h *handler) only(method string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method '%s' not allowed on resource '%s'", r.Method, r.URL.Path))
			return
		}
		select {
		case h.inFlight <- struct{}{}:
			defer func() { <-h.inFlight }()
		default:
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, fmt.Sprintf("Too many requests: %d already in progress; retry later", cap(h.inFlight)))
			return
		}
		// The deadline covers the work and the writing of the response, so a client that
		// stops reading cannot hold the request (and its place) for longer.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(h.timeout + writeGrace))
		ctx, cancel := context.WithTimeoutCause(r.Context(), h.timeout, errRequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		if h.auth != nil {
			if code, msg := h.auth.Authorize(ctx, r); code != 0 {
				if code == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer realm="custom-pod-autoscaler"`)
				}
				writeError(w, code, msg)
				return
			}
		}
		next(w, r)
	}
}

// writeGrace is the time left to write a response after the request deadline.
const writeGrace = 5 * time.Second

var errRequestTimeout = errors.New("request timeout expired")

// fail answers a failed pipeline call: 500 with the error, as the original did, or 503
// when the request ran out of time. A client that went away gets nothing.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, what, rt string, err error) {
	switch {
	case context.Cause(r.Context()) == errRequestTimeout:
		h.log.Warn("API "+what+" request timed out", "runType", rt, "timeout", h.timeout, "error", err)
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("Request timed out after %s: %v", h.timeout, err))
	case stopping(r):
		// The client is still there: tell it why its request ended.
		h.log.Info("API "+what+" request interrupted: the runtime is stopping", "runType", rt, "error", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	case r.Context().Err() != nil:
		h.log.Info("API "+what+" request abandoned by its client", "runType", rt)
	default:
		h.log.Error("API "+what+" request failed", "runType", rt, "error", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// serverContextKey holds, in each request's context, the context the server runs with.
type serverContextKey struct{}

// stopping tells whether the request ended because the server is stopping.
func stopping(r *http.Request) bool {
	sctx, ok := r.Context().Value(serverContextKey{}).(context.Context)
	return ok && sctx.Err() != nil
}

// runType reads dry_run: absent or empty means false.
func runType(w http.ResponseWriter, r *http.Request) (string, bool, bool) {
	v := r.URL.Query().Get("dry_run")
	if v == "" {
		return config.RunTypeAPI, false, true
	}
	dry, err := strconv.ParseBool(v)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid format for 'dry_run' query parameter; '%s' is not a valid boolean value", v))
		return "", false, false
	}
	if dry {
		return config.RunTypeAPIDryRun, true, true
	}
	return config.RunTypeAPI, false, true
}

func (h *handler) metrics(w http.ResponseWriter, r *http.Request) {
	rt, _, ok := runType(w, r)
	if !ok {
		return
	}
	metrics, err := h.p.Metrics(r.Context(), rt)
	if err != nil {
		h.fail(w, r, "metrics", rt, err)
		return
	}
	if metrics == nil {
		metrics = []*metric.ResourceMetric{}
	}
	writeJSON(w, metrics)
}

func (h *handler) evaluation(w http.ResponseWriter, r *http.Request) {
	rt, dry, ok := runType(w, r)
	if !ok {
		return
	}
	ev, err := h.p.Evaluate(r.Context(), rt, dry)
	if err != nil {
		h.fail(w, r, "evaluation", rt, err)
		return
	}
	writeJSON(w, ev)
}

func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	body, _ := json.Marshal(Error{Message: msg, Code: code}) // two plain fields cannot fail
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// Serve serves h as api says until ctx is done, then shuts down, giving requests in
// flight up to shutdownGrace to end (their contexts are cancelled with ctx, which stops
// the user logic they run).
func Serve(ctx context.Context, api *config.APIConfig, h http.Handler, log *slog.Logger, shutdownGrace time.Duration) error {
	addr := net.JoinHostPort(api.Host, strconv.Itoa(api.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("REST API: listening on %s: %w", addr, err)
	}
	return ServeListener(ctx, ln, api, h, log, shutdownGrace)
}

// ServeListener is Serve on an open listener.
func ServeListener(ctx context.Context, ln net.Listener, api *config.APIConfig, h http.Handler, log *slog.Logger, shutdownGrace time.Duration) error {
	requestTimeout := time.Duration(api.RequestTimeout) * time.Millisecond
	if requestTimeout <= 0 {
		requestTimeout = DefaultRequestTimeout
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// The API's requests have no body worth reading slowly.
		ReadTimeout: 30 * time.Second,
		// Every response, even a 404, is written within the request timeout; the handler
		// sets the same deadline per request, from the time it admits it.
		WriteTimeout:   requestTimeout + writeGrace,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		// Requests know the server's context, to tell a stopping runtime from a client
		// that went away.
		BaseContext: func(net.Listener) context.Context { return context.WithValue(ctx, serverContextKey{}, ctx) },
	}
	scheme := "http"
	if api.UseHTTPS {
		scheme = "https"
	}
	authOn := api.Auth != nil && api.Auth.Enabled
	log.Info("REST API listening", "address", scheme+"://"+ln.Addr().String()+prefix, "auth", authOn)
	if !isLoopback(ln.Addr()) {
		switch {
		case !authOn:
			log.Warn("REST API listens beyond loopback without authentication: anyone who can reach it can trigger scaling; set apiConfig.auth.enabled (docs/runtime.md)", "address", ln.Addr().String())
		case !api.UseHTTPS:
			log.Warn("REST API authenticates with bearer tokens over plain HTTP beyond loopback: tokens can be read on the network; set apiConfig.useHTTPS", "address", ln.Addr().String())
		}
	}
	errc := make(chan error, 1)
	go func() {
		if api.UseHTTPS {
			errc <- srv.ServeTLS(ln, api.CertFile, api.KeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("REST API: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("REST API shutdown: %w", err)
	}
	return nil
}

// isLoopback reports whether a listener's address is a loopback one.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
