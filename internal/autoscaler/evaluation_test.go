package autoscaler

import (
	"reflect"
	"strings"
	"testing"

	"github.com/custompodautoscaler/cpa/internal/config"
	"github.com/custompodautoscaler/cpa/internal/execute"
)

func TestParseEvaluation(t *testing.T) {
	tests := []struct {
		in      string
		want    int32
		wantErr string
	}{
		{in: `{"targetReplicas": 3}`, want: 3},
		{in: "{\"targetReplicas\":0}\n", want: 0},
		{in: ` {"targetReplicas": 2147483647, "extra": [1,2]} `, want: 2147483647},
		{in: `{"targetReplicas": 1e2}`, wantErr: "whole number"},
		{in: `{"targetReplicas": 2.5}`, wantErr: "whole number"},
		{in: `{"targetReplicas": "3"}`, wantErr: "must be a number"},
		{in: `{"targetReplicas": null}`, wantErr: "must be a number"},
		{in: `{"targetReplicas": -1}`, wantErr: "between 0"},
		{in: `{"targetReplicas": 2147483648}`, wantErr: "between 0"},
		{in: `{"replicas": 3}`, wantErr: `no "targetReplicas"`},
		{in: `3`, wantErr: "not a JSON object"},
		{in: `null`, wantErr: "not a JSON object"},
		{in: ``, wantErr: "not a JSON object"},
		{in: `garbage`, wantErr: "not a JSON object"},
		{in: `{"targetReplicas": 3} {"targetReplicas": 4}`, wantErr: "unexpected data"},
		{in: `{"targetReplicas": 3}}`, wantErr: "unexpected data"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseEvaluation([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseEvaluation(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), `{"targetReplicas": 3}`) {
					t.Errorf("error %q does not show the expected shape", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseEvaluation(%q): %v", tt.in, err)
			}
			if got.TargetReplicas != tt.want {
				t.Fatalf("ParseEvaluation(%q) = %d, want %d", tt.in, got.TargetReplicas, tt.want)
			}
		})
	}
}

func TestParseEvaluationExcerptIsBounded(t *testing.T) {
	_, err := ParseEvaluation([]byte(strings.Repeat("x", 100000)))
	if err == nil || len(err.Error()) > 600 {
		t.Fatalf("error not bounded: %d bytes", len(err.Error()))
	}
}

func FuzzParseEvaluation(f *testing.F) {
	for _, s := range []string{`{"targetReplicas": 3}`, `{"targetReplicas": -1}`, `{}`, `[]`, `3`, `{"targetReplicas": 1.0}`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ev, err := ParseEvaluation(in)
		if err == nil && (ev == nil || ev.TargetReplicas < 0) {
			t.Fatalf("accepted %q as %+v", in, ev)
		}
		if err != nil && ev != nil {
			t.Fatalf("returned both a value and an error for %q", in)
		}
	})
}

// Every method key of the config has its Stages field, and every Stages field its key:
// the config's list is the only list of stages and hooks.
func TestStagesCoverConfigMethods(t *testing.T) {
	var st Stages
	keys := (&config.Config{}).Methods()
	seen := map[*execute.Runner]bool{}
	for _, m := range keys {
		seen[st.field(m.Key)] = true
	}
	if n := reflect.TypeFor[Stages]().NumField(); n != len(keys) || len(seen) != n {
		t.Fatalf("Stages has %d fields, config %d method keys (%d distinct fields found)", n, len(keys), len(seen))
	}
}
