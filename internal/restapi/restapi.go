// Package restapi serves the runtime's REST API: GET /api/v1/metrics and
// POST /api/v1/evaluation, with the paths, query parameters and error bodies of the
// original Custom Pod Autoscaler.
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

// NewHandler returns the API's routes.
func NewHandler(p Pipeline, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{p: p, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc(prefix+"/metrics", h.only(http.MethodGet, h.metrics))
	mux.HandleFunc(prefix+"/evaluation", h.only(http.MethodPost, h.evaluation))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Resource '%s' not found", r.URL.Path))
	})
	return mux
}

type handler struct {
	p   Pipeline
	log *slog.Logger
}

func (h *handler) only(method string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method '%s' not allowed on resource '%s'", r.Method, r.URL.Path))
			return
		}
		next(w, r)
	}
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
		h.log.Error("API metrics request failed", "runType", rt, "error", err)
		writeError(w, http.StatusInternalServerError, err.Error())
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
		h.log.Error("API evaluation request failed", "runType", rt, "error", err)
		writeError(w, http.StatusInternalServerError, err.Error())
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
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	scheme := "http"
	if api.UseHTTPS {
		scheme = "https"
	}
	log.Info("REST API listening", "address", scheme+"://"+ln.Addr().String()+prefix)
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
