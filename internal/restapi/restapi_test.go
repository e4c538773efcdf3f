package restapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/custompodautoscaler/cpa/internal/config"
	"github.com/custompodautoscaler/cpa/pkg/evaluate"
	"github.com/custompodautoscaler/cpa/pkg/metric"
)

type fakePipeline struct {
	err      error
	runTypes []string
	dryRuns  []bool
}

func (f *fakePipeline) Metrics(_ context.Context, rt string) ([]*metric.ResourceMetric, error) {
	f.runTypes = append(f.runTypes, rt)
	if f.err != nil {
		return nil, f.err
	}
	return []*metric.ResourceMetric{{Resource: "app", Value: "3"}}, nil
}

func (f *fakePipeline) Evaluate(_ context.Context, rt string, dry bool) (*evaluate.Evaluation, error) {
	f.runTypes = append(f.runTypes, rt)
	f.dryRuns = append(f.dryRuns, dry)
	if f.err != nil {
		return nil, f.err
	}
	return &evaluate.Evaluation{TargetReplicas: 4}, nil
}

func TestRoutes(t *testing.T) {
	tests := []struct {
		name, method, target string
		err                  error
		code                 int
		body                 string
		runType              string
		dry                  bool
	}{
		{name: "metrics", method: "GET", target: "/api/v1/metrics", code: 200, body: `[{"resource":"app","value":"3"}]`, runType: "api"},
		{name: "metrics dry run", method: "GET", target: "/api/v1/metrics?dry_run=true", code: 200, body: `[{"resource":"app","value":"3"}]`, runType: "api_dry_run"},
		{name: "evaluation", method: "POST", target: "/api/v1/evaluation", code: 200, body: `{"targetReplicas":4}`, runType: "api"},
		{name: "evaluation dry run", method: "POST", target: "/api/v1/evaluation?dry_run=1", code: 200, body: `{"targetReplicas":4}`, runType: "api_dry_run", dry: true},
		{name: "evaluation dry_run false", method: "POST", target: "/api/v1/evaluation?dry_run=false", code: 200, body: `{"targetReplicas":4}`, runType: "api"},
		{name: "bad dry_run", method: "POST", target: "/api/v1/evaluation?dry_run=maybe", code: 400,
			body: `{"message":"Invalid format for 'dry_run' query parameter; 'maybe' is not a valid boolean value","code":400}`},
		{name: "pipeline error", method: "GET", target: "/api/v1/metrics", err: errors.New("metric stage: exit status 1"), code: 500,
			body: `{"message":"metric stage: exit status 1","code":500}`, runType: "api"},
		{name: "not found", method: "GET", target: "/api/v1/nothing", code: 404, body: `{"message":"Resource '/api/v1/nothing' not found","code":404}`},
		{name: "wrong method", method: "GET", target: "/api/v1/evaluation", code: 405, body: `{"message":"Method 'GET' not allowed on resource '/api/v1/evaluation'","code":405}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakePipeline{err: tt.err}
			rec := httptest.NewRecorder()
			NewHandler(p, Options{}).ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
			if rec.Code != tt.code || rec.Body.String() != tt.body {
				t.Fatalf("%s %s = %d %s, want %d %s", tt.method, tt.target, rec.Code, rec.Body, tt.code, tt.body)
			}
			if tt.code >= 400 && (rec.Header().Get("Content-Type") != "application/json; charset=utf-8" || rec.Header().Get("X-Content-Type-Options") != "nosniff") {
				t.Errorf("error headers %v", rec.Header())
			}
			if tt.runType != "" && (len(p.runTypes) != 1 || p.runTypes[0] != tt.runType) {
				t.Errorf("run types %v, want %s", p.runTypes, tt.runType)
			}
			if tt.runType == "" && len(p.runTypes) != 0 {
				t.Errorf("pipeline ran for a rejected request")
			}
			if len(p.dryRuns) == 1 && p.dryRuns[0] != tt.dry {
				t.Errorf("dry run %v, want %v", p.dryRuns[0], tt.dry)
			}
		})
	}
}

func TestServeShutsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ServeListener(ctx, ln, &config.APIConfig{Enabled: true}, NewHandler(&fakePipeline{}, Options{}), slog.New(slog.DiscardHandler), time.Second)
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/api/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"value":"3"`) {
		t.Fatalf("body %s", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // a hang, not slowness: the grace is 1 s
		t.Fatal("server did not shut down")
	}
}
