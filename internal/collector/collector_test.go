package collector

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

type fixed []Value

func (f fixed) Collect(context.Context) ([]Value, error) { return f, nil }

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	r.Register(External, "b", func(Config) (Collector, error) { return fixed{}, nil })
	r.Register(External, "a", func(cfg Config) (Collector, error) {
		if cfg.Keys["endpoint"] == "" {
			return nil, errors.New(`key "endpoint": required`)
		}
		return fixed{}, nil
	})
	r.Register(Pods, "c", func(Config) (Collector, error) { return fixed{}, nil }, "path", "json-key")
	if keys, ok := r.KnownKeys(Pods, "c"); !ok || strings.Join(keys, ",") != "json-key,path" {
		t.Errorf("KnownKeys(Pods, c) = %v, %v", keys, ok)
	}
	if _, ok := r.KnownKeys(External, "a"); ok {
		t.Error("KnownKeys of a type registered without keys reports some")
	}
	if got := strings.Join(r.Types(External), ","); got != "a,b" {
		t.Errorf("Types(External) = %s, want a,b", got)
	}
	if _, err := r.New(Config{Kind: Pods, Name: "m", Type: "a"}); !errors.As(err, new(*NotFoundError)) {
		t.Errorf("New(Pods a) error %v, want a *NotFoundError", err)
	}
	if _, err := r.New(Config{Kind: External, Name: "m", Type: "a", Keys: map[string]string{"endpoint": "http://x"}}); err != nil {
		t.Errorf("New: %v", err)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Kind: External, Name: "m", Type: "nope"}, `metric "m": no collector of type "nope" for External metrics (known: [a b])`},
		{Config{Kind: External, Name: "m", Type: "a"}, `metric "m", collector a: key "endpoint": required`},
	} {
		if _, err := r.New(tc.cfg); err == nil || err.Error() != tc.want {
			t.Errorf("New(%+v) error %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestMilliQuantity(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{1.5, "1500m"}, {-0.0005, "-1m"}, {0.0005, "1m"}, {0, "0"}, {9e15, "9e15"}, {-9e15, "-9e15"},
	} {
		q, err := MilliQuantity(tc.v)
		if err != nil || q.Cmp(resource.MustParse(tc.want)) != 0 {
			t.Errorf("MilliQuantity(%v) = %s, %v; want %s", tc.v, &q, err, tc.want)
		}
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 9.3e15, -9.3e15, math.MaxFloat64} {
		if q, err := MilliQuantity(v); err == nil {
			t.Errorf("MilliQuantity(%v) = %s, want an error", v, &q)
		}
	}
}

func TestPositiveDuration(t *testing.T) {
	keys := map[string]string{"ok": "2s", "zero": "0s", "neg": "-1s", "word": "soon"}
	for _, tc := range []struct {
		key, err string
		want     time.Duration
	}{
		{"ok", "", 2 * time.Second},
		{"absent", "", time.Minute},
		{"zero", "must be positive", time.Minute},
		{"neg", "must be positive", time.Minute},
		{"word", "not a duration", time.Minute},
	} {
		d, err := PositiveDuration(keys, tc.key, time.Minute)
		if d != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("PositiveDuration(%q) = %s, %v; want %s, %q", tc.key, d, err, tc.want, tc.err)
		}
	}
}

func TestCheckPerReplica(t *testing.T) {
	target := ObjectRef{Kind: "Deployment", Name: "web"}
	if errs := CheckPerReplica(Config{PerReplica: false}, false); len(errs) != 0 {
		t.Errorf("not per-replica: %v", errs)
	}
	if errs := CheckPerReplica(Config{PerReplica: true, ScaleTarget: target}, true); len(errs) != 0 {
		t.Errorf("per-replica with a target and replicas: %v", errs)
	}
	if errs := CheckPerReplica(Config{PerReplica: true}, false); len(errs) != 2 {
		t.Errorf("per-replica with neither: %v, want two errors", errs)
	}
}
