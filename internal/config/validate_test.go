package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// valid is a configuration built in code, with its defaults applied.
func valid() *Config {
	c := Default()
	c.ScaleTargetRef = &autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "x"}
	c.Metric = &Method{Type: MethodShell, Timeout: 100, Shell: &Shell{Entrypoint: "/metric"}}
	c.Evaluate = &Method{Type: MethodHTTP, Timeout: 100, HTTP: &HTTP{URL: "https://e.example/"}}
	c.Evaluate.SetDefaults()
	return c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string
	}{
		{"valid", func(*Config) {}, nil},
		{"core API group", func(c *Config) { c.ScaleTargetRef.APIVersion = "v1"; c.ScaleTargetRef.Kind = "ReplicationController" }, nil},
		{"nil config", nil, []string{"no configuration"}},
		{"nil apiConfig", func(c *Config) { c.APIConfig = nil }, []string{"apiConfig: required"}},
		{"defaults not applied", func(c *Config) {
			c.Metric.Shell.Entrypoint = ""
			c.Evaluate.HTTP = &HTTP{URL: "http://x"}
		}, []string{
			"metric.shell.entrypoint: required",
			"evaluate.http.method: required",
			"evaluate.http.successCodes: required: at least one status code",
			"evaluate.http.parameterMode: required: query or body",
		}},
		{"kubernetes metric specs", func(c *Config) {
			c.KubernetesMetricSpecs = []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: "cpu", Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType}}},
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType}}},
				{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricSource{Name: "cpu", Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType}}},
				{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "rps"}, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType}}},
				{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: "a/b/c", Kind: "Ingress"}, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType}}},
				{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "q"}}},
			}
		}, []string{
			`kubernetesMetricSpecs[1].resource.name: required: a resource such as cpu or memory`,
			`kubernetesMetricSpecs[1].resource.target.type = "Value": must be Utilization or AverageValue`,
			`kubernetesMetricSpecs[2].containerResource.container: required: the name of the container to measure`,
			`kubernetesMetricSpecs[3].pods.target.type = "Utilization": must be AverageValue`,
			`kubernetesMetricSpecs[4].object.describedObject.name: required`,
			`kubernetesMetricSpecs[4].object.describedObject.apiVersion = "a/b/c": not a group/version: unexpected GroupVersion string: a/b/c`,
			`kubernetesMetricSpecs[4].object.metric.name: required`,
			`kubernetesMetricSpecs[5].external.target.type: required: Value or AverageValue`,
		}},
		{"timeout zero", func(c *Config) { c.Metric.Timeout = 0 }, []string{
			"metric.timeout = 0: must be a positive number of milliseconds (leave it out for the default, 5000)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *Config
			if tt.modify != nil {
				c = valid()
				tt.modify(c)
			}
			err := c.Validate()
			var got []string
			if err != nil {
				var verr *ValidationError
				if !errors.As(err, &verr) {
					t.Fatalf("Validate returned %T: %v", err, err)
				}
				for _, p := range verr.Problems {
					got = append(got, p.String())
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestValidationErrorString(t *testing.T) {
	many := make([]Problem, maxListedProblems+2)
	for i := range many {
		many[i] = Problem{Field: fmt.Sprintf("f%d", i), Detail: "bad"}
	}
	tests := []struct {
		problems []Problem
		want     string
	}{
		{nil, "invalid configuration"},
		{[]Problem{{Field: "a.b", Value: `"x"`, Detail: "bad"}}, `invalid configuration: a.b = "x": bad`},
		{[]Problem{{Field: "a", Detail: "bad"}, {Value: "5", Detail: "not an object"}, {Detail: "broken"}},
			"invalid configuration (3 problems):\n  a: bad\n  5: not an object\n  broken"},
		{many, "invalid configuration (52 problems):\n  f0: bad\n"},
	}
	for _, tt := range tests {
		got := (&ValidationError{Problems: tt.problems}).Error()
		if len(tt.problems) > maxListedProblems {
			if !strings.HasPrefix(got, tt.want) || !strings.HasSuffix(got, "\n  f49: bad\n  ... and 2 more") {
				t.Errorf("Error() = %q", got)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestSetDefaults(t *testing.T) {
	(*Method)(nil).SetDefaults() // no panic
	m := &Method{Type: MethodShell, Shell: &Shell{}, HTTP: &HTTP{}}
	m.SetDefaults()
	want := &Method{Type: MethodShell, Shell: &Shell{Entrypoint: "/bin/sh"}, HTTP: &HTTP{Method: "POST", ParameterMode: "body", SuccessCodes: []int{200}}}
	expect(t, "method", m, want)
	kept := &Method{Shell: &Shell{Entrypoint: "python"}, HTTP: &HTTP{Method: "GET", ParameterMode: "query", SuccessCodes: []int{204}}}
	kept.SetDefaults()
	expect(t, "method", kept, &Method{Shell: &Shell{Entrypoint: "python"}, HTTP: &HTTP{Method: "GET", ParameterMode: "query", SuccessCodes: []int{204}}})
}

func TestDefaultPerPodConcurrency(t *testing.T) {
	expect(t, "http", DefaultPerPodConcurrency(&Method{Type: MethodHTTP}), 16)
	expect(t, "shell", DefaultPerPodConcurrency(&Method{Type: MethodShell}), 4*runtime.GOMAXPROCS(0))
	expect(t, "nil", DefaultPerPodConcurrency(nil), 4*runtime.GOMAXPROCS(0))
}

func TestJSONFields(t *testing.T) {
	type inner struct {
		A int `json:"a"`
		B int `json:"b"`
	}
	type Exported struct {
		C int `json:"c"`
	}
	type outer struct {
		inner     `json:",inline"`
		*Exported        // untagged, embedded by pointer
		B         string `json:"b"` // shadows inner's b
		Skip      int    `json:"-"`
		NoTag     int
		Named     inner `json:"named"`
		private   int
	}
	_ = outer{}.private
	var got []string
	for _, f := range jsonFields(reflect.TypeFor[outer]()) {
		got = append(got, f.name+":"+f.typ.String())
	}
	want := []string{"b:string", "NoTag:int", "named:config.inner", "a:int", "c:int"}
	expect(t, "fields", got, want)
}

func TestNearest(t *testing.T) {
	fields := jsonFields(reflect.TypeFor[Config]())
	tests := map[string]string{
		"metrc":                  "metric",
		"Metric":                 "metric",
		"evalute":                "evaluate",
		"intreval":               "interval",
		"minReplica":             "minReplicas",
		"max_replicas":           "maxReplicas",
		"apiconfig":              "apiConfig",
		"scaleTarget":            "scaleTargetRef",
		"foo":                    "",
		"hooks":                  "",
		"preMetrics":             "preMetric",
		"runmode":                "runMode",
		strings.Repeat("x", 100): "",
	}
	for key, want := range tests {
		if got := nearest(key, fields); got != want {
			t.Errorf("nearest(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"port", "prot", 1}, {"kitten", "sitting", 3}, {"metric", "metric", 0},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
