package collector

import (
	"context"
	"errors"
	"strings"
	"testing"
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
	r.Register(Pods, "c", func(Config) (Collector, error) { return fixed{}, nil })
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
