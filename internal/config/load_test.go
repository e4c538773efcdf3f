package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
)

// minimal is the smallest valid configuration.
const minimal = `
scaleTargetRef:
  apiVersion: apps/v1
  kind: Deployment
  name: hello
metric:
  type: shell
  shell:
    entrypoint: python
    command: ["/metric.py"]
evaluate:
  type: http
  http:
    url: http://127.0.0.1:8080/evaluate
`

func TestDefault(t *testing.T) {
	want := &Config{
		Namespace:               "default",
		Interval:                15000,
		StartTime:               1,
		MinReplicas:             1,
		MaxReplicas:             10,
		RunMode:                 "per-pod",
		APIConfig:               &APIConfig{Enabled: true, Port: 5000, Host: "127.0.0.1", RequestTimeout: 60000},
		InitialReadinessDelay:   30,
		CPUInitializationPeriod: 300,
	}
	if got := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default() = %+v, want %+v", got, want)
	}
	if a, b := Default(), Default(); a.APIConfig == b.APIConfig {
		t.Error("Default shares its APIConfig between calls")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		env   []string
		check func(t *testing.T, c *Config)
	}{{
		name: "defaults and method defaults",
		file: minimal,
		check: func(t *testing.T, c *Config) {
			want := Default()
			want.ScaleTargetRef = &autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "hello"}
			want.Metric = &Method{Type: "shell", Timeout: 5000, Shell: &Shell{Entrypoint: "python", Command: []string{"/metric.py"}}}
			want.Evaluate = &Method{Type: "http", Timeout: 5000, HTTP: &HTTP{
				Method: "POST", URL: "http://127.0.0.1:8080/evaluate", SuccessCodes: []int{200}, ParameterMode: "body",
			}}
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got  %s\nwant %s", mustJSON(t, c), mustJSON(t, want))
			}
		},
	}, {
		name: "a JSON document",
		file: `{"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello"},
			"metric": {"type": "shell", "timeout": 2500, "shell": {"command": ["-c", "echo 1"]}},
			"evaluate": {"type": "shell", "shell": {"entrypoint": "/evaluate"}},
			"interval": 1e4, "runMode": "per-resource"}`,
		check: func(t *testing.T, c *Config) {
			expect(t, "interval", c.Interval, 10000)
			expect(t, "runMode", c.RunMode, RunModePerResource)
			expect(t, "metric.timeout", c.Metric.Timeout, 2500)
			expect(t, "metric.shell.entrypoint", c.Metric.Shell.Entrypoint, "/bin/sh")
			expect(t, "evaluate.shell.command", len(c.Evaluate.Shell.Command), 0)
		},
	}, {
		name: "file keys override defaults; objects merge over them",
		file: minimal + `
namespace: team-a
minReplicas: 0
maxReplicas: 3
startTime: 60000
logVerbosity: 3
downscaleStabilization: 300
perPodConcurrency: 4
requireKubernetesMetrics: true
initialReadinessDelay: 0
cpuInitializationPeriod: 60
apiConfig:
  port: 6000
`,
		check: func(t *testing.T, c *Config) {
			expect(t, "namespace", c.Namespace, "team-a")
			expect(t, "minReplicas", c.MinReplicas, 0)
			expect(t, "maxReplicas", c.MaxReplicas, 3)
			expect(t, "startTime", c.StartTime, 60000)
			expect(t, "logVerbosity", c.LogVerbosity, 3)
			expect(t, "downscaleStabilization", c.DownscaleStabilization, 300)
			expect(t, "perPodConcurrency", c.PerPodConcurrency, 4)
			expect(t, "requireKubernetesMetrics", c.RequireKubernetesMetrics, true)
			expect(t, "initialReadinessDelay", c.InitialReadinessDelay, 0)
			expect(t, "cpuInitializationPeriod", c.CPUInitializationPeriod, 60)
			expect(t, "apiConfig", *c.APIConfig, APIConfig{Enabled: true, Port: 6000, Host: "127.0.0.1", RequestTimeout: 60000})
		},
	}, {
		name: "null and empty keys count as absent",
		file: minimal + `
interval: null
apiConfig:
preMetric: ~
namespace:
`,
		env: []string{`metric={"timeout": null, "shell": {"entrypoint": null}}`},
		check: func(t *testing.T, c *Config) {
			expect(t, "interval", c.Interval, DefaultInterval)
			expect(t, "apiConfig", *c.APIConfig, *Default().APIConfig)
			expect(t, "preMetric", c.PreMetric, (*Method)(nil))
			expect(t, "namespace", c.Namespace, "default")
			expect(t, "metric.timeout", c.Metric.Timeout, DefaultTimeout)
			expect(t, "metric.shell.entrypoint", c.Metric.Shell.Entrypoint, "python")
		},
	}, {
		name: "environment overrides: strings as they are, the rest as YAML or JSON",
		file: minimal + "interval: 20000\nnamespace: from-file\n",
		env: []string{
			"PATH=/usr/bin", "configPath=/x.yaml", "INTERVAL=1", // not keys: ignored
			"interval=10000",
			"minReplicas=3",
			"maxReplicas: 7", // not KEY=value: ignored
			"namespace=from-env",
			"runMode=per-resource",
			"requireKubernetesMetrics=true",
			`scaleTargetRef={"apiVersion":"apps/v1","kind":"StatefulSet","name":"x"}`,
			"kubernetesMetricSpecs=- type: Resource\n  resource:\n    name: cpu\n    target:\n      type: Utilization\n      averageUtilization: 50\n",
			"preScale=type: http\nhttp:\n  url: https://hooks.example/pre\n  method: PUT\n  successCodes: [200, 204]\n  parameterMode: query\n",
		},
		check: func(t *testing.T, c *Config) {
			expect(t, "interval", c.Interval, 10000)
			expect(t, "minReplicas", c.MinReplicas, 3)
			expect(t, "maxReplicas", c.MaxReplicas, 10)
			expect(t, "namespace", c.Namespace, "from-env")
			expect(t, "runMode", c.RunMode, RunModePerResource)
			expect(t, "requireKubernetesMetrics", c.RequireKubernetesMetrics, true)
			expect(t, "scaleTargetRef", *c.ScaleTargetRef, autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "x"})
			fifty := int32(50)
			expect(t, "kubernetesMetricSpecs", c.KubernetesMetricSpecs, []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: "cpu", Target: autoscalingv2.MetricTarget{
					Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &fifty,
				}},
			}})
			expect(t, "preScale", *c.PreScale, Method{Type: "http", Timeout: 5000, HTTP: &HTTP{
				Method: "PUT", URL: "https://hooks.example/pre", SuccessCodes: []int{200, 204}, ParameterMode: "query",
			}})
		},
	}, {
		name: "environment objects merge over the file's and the defaults'",
		file: minimal + "apiConfig: {port: 6000}\n",
		env: []string{
			`apiConfig={"host": "0.0.0.0"}`,
			`metric={"timeout": 100, "shell": {"command": ["/other.py"]}}`,
		},
		check: func(t *testing.T, c *Config) {
			expect(t, "apiConfig", *c.APIConfig, APIConfig{Enabled: true, Port: 6000, Host: "0.0.0.0", RequestTimeout: 60000})
			expect(t, "metric", *c.Metric, Method{Type: "shell", Timeout: 100, Shell: &Shell{Entrypoint: "python", Command: []string{"/other.py"}}})
		},
	}, {
		name: "a later environment entry wins",
		file: minimal,
		env:  []string{"interval=1000", "interval=2000"},
		check: func(t *testing.T, c *Config) {
			expect(t, "interval", c.Interval, 2000)
		},
	}, {
		name: "YAML numbers and booleans become text where text is expected",
		file: minimal + `
namespace: 123
preMetric:
  type: http
  http:
    url: http://x/
    headers: {X-Version: 2, X-Debug: true, X-Ratio: 1.5}
`,
		check: func(t *testing.T, c *Config) {
			expect(t, "namespace", c.Namespace, "123")
			expect(t, "headers", c.PreMetric.HTTP.Headers, map[string]string{"X-Version": "2", "X-Debug": "true", "X-Ratio": "1.5"})
		},
	}, {
		name: "kubernetes metric specs with quantities, selectors and every source",
		file: minimal + `
kubernetesMetricSpecs:
- type: Pods
  pods:
    metric:
      name: packets-per-second
      selector: {matchLabels: {tier: 1}, matchExpressions: [{key: a, operator: In, values: [x]}]}
    target: {type: AverageValue, averageValue: 1k}
- type: Object
  object:
    describedObject: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: main-route}
    metric: {name: requests-per-second}
    target: {type: Value, value: 10}
- type: External
  external:
    metric: {name: queue_messages_ready}
    target: {type: AverageValue, averageValue: 30}
- type: ContainerResource
  containerResource: {name: cpu, container: app, target: {type: Utilization, averageUtilization: 60}}
`,
		check: func(t *testing.T, c *Config) {
			specs := c.KubernetesMetricSpecs
			expect(t, "len", len(specs), 4)
			expect(t, "pods averageValue", specs[0].Pods.Target.AverageValue.Cmp(resource.MustParse("1k")), 0)
			expect(t, "pods selector", specs[0].Pods.Metric.Selector.MatchLabels["tier"], "1")
			expect(t, "object value", specs[1].Object.Target.Value.Cmp(resource.MustParse("10")), 0)
			expect(t, "external", specs[2].External.Metric.Name, "queue_messages_ready")
			expect(t, "container", specs[3].ContainerResource.Container, "app")
		},
	}, {
		name: "http defaults fill empty values",
		file: minimal + `
postScale:
  type: http
  timeout: 1
  http: {url: "https://x/y?z=1", method: "", parameterMode: "", successCodes: []}
`,
		check: func(t *testing.T, c *Config) {
			expect(t, "postScale", *c.PostScale, Method{Type: "http", Timeout: 1, HTTP: &HTTP{
				Method: "POST", URL: "https://x/y?z=1", SuccessCodes: []int{200}, ParameterMode: "body",
			}})
		},
	}, {
		name: "the API disabled needs no port",
		file: minimal + "apiConfig: {enabled: false, port: 0, useHTTPS: true}\n",
		check: func(t *testing.T, c *Config) {
			expect(t, "apiConfig.enabled", c.APIConfig.Enabled, false)
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.file), tt.env)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate of a parsed config: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		want []string // every problem, in order
	}{{
		name: "empty document",
		file: "",
		want: []string{
			"scaleTargetRef: required: the resource to scale (apiVersion, kind, name)",
			"metric: required: a method with type shell or http",
			"evaluate: required: a method with type shell or http",
		},
	}, {
		name: "not an object",
		file: "[1, 2]",
		want: []string{"[1,2]: the configuration must be an object (a YAML mapping or JSON object), got a list"},
	}, {
		name: "unknown keys, with suggestions, at every depth; two keys for one field",
		file: minimal + `
metrc: {}
interval: 7
Interval: 5
apiconfig: {}
scaleTarget: {}
zzz: 1
apiConfig: {prot: 1}
preMetric: {type: shell, shel: {}, shell: {command: [x], entrypiont: y}}
kubernetesMetricSpecs:
- type: Resource
  resource: {name: cpu, target: {type: Utilization, averageUtilisation: 50}}
`,
		want: []string{
			`Interval: "interval" and "Interval" both set "interval" (keys match without regard to case); keep one`,
			`apiconfig: "apiConfig" and "apiconfig" both set "apiConfig" (keys match without regard to case); keep one`,
			`preMetric.shell.entrypiont: unknown field "entrypiont" (did you mean "entrypoint"?)`,
			`preMetric.shel: unknown field "shel" (did you mean "shell"?)`,
			`apiConfig.prot: unknown field "prot" (did you mean "port"?)`,
			`kubernetesMetricSpecs[0].resource.target.averageUtilisation: unknown field "averageUtilisation" (did you mean "averageUtilization"?)`,
			`metrc: unknown field "metrc" (did you mean "metric"?)`,
			`scaleTarget: unknown field "scaleTarget" (did you mean "scaleTargetRef"?)`,
			`zzz: unknown field "zzz"`,
		},
	}, {
		name: "wrong types name the field",
		file: minimal + `
interval: abc
minReplicas: 1.5
maxReplicas: 3000000000
startTime: [1]
apiConfig: {enabled: "yes please", port: "5000"}
requireKubernetesMetrics: 1
preMetric: {type: shell, shell: {command: x}}
postMetric: shell
kubernetesMetricSpecs:
- 5
- type: Pods
  pods: {metric: {name: x}, target: {type: AverageValue, averageValue: lots}}
`,
		want: []string{
			`preMetric.shell.command = "x": expected a list, got a string`,
			`postMetric = "shell": expected an object, got a string`,
			`interval = "abc": expected an integer, got a string`,
			`startTime = [1]: expected an integer, got a list`,
			`minReplicas = 1.5: expected an integer`,
			`maxReplicas = 3000000000: out of range for a 32-bit integer`,
			`apiConfig.enabled = "yes please": expected a boolean (true or false), got a string`,
			`apiConfig.port = "5000": expected an integer, got a string`,
			`kubernetesMetricSpecs[0] = 5: expected an object, got a number`,
			`kubernetesMetricSpecs[1].pods.target.averageValue = "lots": invalid value: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`,
			`requireKubernetesMetrics = 1: expected a boolean (true or false), got a number`,
		},
	}, {
		name: "missing parts of scaleTargetRef, namespace",
		file: strings.Replace(minimal, "  kind: Deployment\n  name: hello", "  kind: \"\"", 1) + "namespace: Team_A\n",
		want: []string{
			"scaleTargetRef.kind: required",
			"scaleTargetRef.name: required",
			`namespace = "Team_A": not a namespace name: at most 63 lower case letters, digits and '-', starting and ending with a letter or digit`,
		},
	}, {
		name: "scaleTargetRef apiVersion",
		file: strings.Replace(minimal, "apps/v1", "a/b/c", 1) + "namespace: \"\"\n",
		want: []string{
			`scaleTargetRef.apiVersion = "a/b/c": not an apiVersion (group/version, or version for the core group)`,
			"namespace: required",
		},
	}, {
		name: "numeric bounds",
		file: minimal + `
interval: 0
startTime: -1
minReplicas: -1
maxReplicas: 0
perPodConcurrency: -1
logVerbosity: 11
downscaleStabilization: -5
initialReadinessDelay: -1
cpuInitializationPeriod: -1
runMode: per-node
`,
		want: []string{
			"interval = 0: must be a positive number of milliseconds",
			"startTime = -1: must be a positive number of milliseconds",
			"minReplicas = -1: must be 0 or more",
			"maxReplicas = 0: must be 1 or more",
			`runMode = "per-node": must be per-pod or per-resource`,
			"perPodConcurrency = -1: must be 0 (automatic) or more",
			"logVerbosity = 11: must be between 0 and 10",
			"downscaleStabilization = -5: must be 0 or more seconds",
			"initialReadinessDelay = -1: must be 0 or more seconds",
			"cpuInitializationPeriod = -1: must be 0 or more seconds",
		},
	}, {
		name: "min above max, durations too long for Go",
		file: minimal + "minReplicas: 5\nmaxReplicas: 4\nlogVerbosity: -1\ninterval: 9223372036855\nstartTime: 9223372036854\n" +
			"downscaleStabilization: 9223372037\ncpuInitializationPeriod: 9223372036\n" +
			"preScale: {type: shell, timeout: 9223372036855, shell: {entrypoint: x}}\n",
		want: []string{
			"preScale.timeout = 9223372036855: must be at most 9223372036854 milliseconds (about 292 years)",
			"interval = 9223372036855: must be at most 9223372036854 milliseconds (about 292 years)",
			"minReplicas = 5: must not be more than maxReplicas (4)",
			"logVerbosity = -1: must be between 0 and 10",
			"downscaleStabilization = 9223372037: must be at most 9223372036 seconds (about 292 years)",
		},
	}, {
		name: "methods",
		file: minimal + `
preMetric: {type: shell, timeout: 0, shell: {}}
postMetric: {type: shell, timeout: -5}
preEvaluate: {type: http, shell: {command: [x]}}
postEvaluate: {type: exec}
preScale: {shell: {command: [x]}}
postScale: {type: shell, shell: {entrypoint: /bin/sh}}
`,
		want: []string{
			"preMetric.shell.command: required when the entrypoint is /bin/sh: without a command the shell would run the stage's JSON input as a script",
			"preMetric.timeout = 0: must be a positive number of milliseconds (leave it out for the default, 5000)",
			"postMetric.shell: required for type shell",
			"postMetric.timeout = -5: must be a positive number of milliseconds (leave it out for the default, 5000)",
			"preEvaluate.http: required for type http",
			`postEvaluate.type = "exec": must be shell or http`,
			"preScale.type: required: shell or http",
			"postScale.shell.command: required when the entrypoint is /bin/sh: without a command the shell would run the stage's JSON input as a script",
		},
	}, {
		name: "http blocks",
		file: minimal + `
preMetric: {type: http, http: {}}
postMetric:
  type: http
  http:
    url: ftp://x/
    method: "GE T"
    parameterMode: form
    successCodes: [99, 200, 600]
    headers: {"bad name": x, X-Ok: "a\nb"}
    clientCert: /c.pem
preEvaluate: {type: http, http: {url: "/relative", clientKey: /k.pem}}
postEvaluate: {type: http, http: {url: "http://[::1"}}
`,
		want: []string{
			"preMetric.http.url: required: an absolute http:// or https:// URL",
			`postMetric.http.method = "GE T": not an HTTP method (a token such as GET or POST)`,
			`postMetric.http.url = "ftp://x/": must be an absolute http:// or https:// URL`,
			`postMetric.http.headers[X-Ok] = "a\nb": header values must not contain control characters such as line breaks`,
			`postMetric.http.headers = "bad name": not a valid header name`,
			"postMetric.http.successCodes[0] = 99: not an HTTP status code (100 to 599)",
			"postMetric.http.successCodes[2] = 600: not an HTTP status code (100 to 599)",
			`postMetric.http.parameterMode = "form": must be query or body`,
			"postMetric.http.clientKey: required when clientCert is set",
			`preEvaluate.http.url = "/relative": must be an absolute http:// or https:// URL`,
			"preEvaluate.http.clientCert: required when clientKey is set",
			`postEvaluate.http.url = "http://[::1": not a URL: missing ']' in host`,
		},
	}, {
		name: "apiConfig",
		file: minimal + "apiConfig: {port: 70000, useHTTPS: true, certFile: /c.pem}\n",
		want: []string{
			"apiConfig.port = 70000: must be between 1 and 65535 while the API is enabled",
			"apiConfig.keyFile: required when useHTTPS is true",
		},
	}, {
		name: "kubernetes metric specs",
		file: minimal + `
kubernetesMetricSpecs:
- {}
- type: Resourse
- type: Pods
- type: External
  external: {metric: {name: x}, target: {type: Value}}
  object: {metric: {name: x}, target: {type: Value}, describedObject: {kind: A, name: b}}
`,
		want: []string{
			"kubernetesMetricSpecs[0].type: required: one of Resource, ContainerResource, Pods, Object, External",
			`kubernetesMetricSpecs[1].type = "Resourse": must be one of Resource, ContainerResource, Pods, Object, External`,
			"kubernetesMetricSpecs[2].pods: required for type Pods",
			"kubernetesMetricSpecs[3].object: must not be set for type External",
		},
	}, {
		name: "environment problems name the variable",
		file: minimal + "apiConfig: {useHTTPS: true}\n",
		env: []string{
			"interval=abc",
			"startTime=x: [",
			"maxReplicas=",
			`apiConfig={"prot": 1, "port": 0, "certFile": "/c", "keyFile": "/k"}`,
			"scaleTargetRef=5",
			"logVerbosity=11",
		},
		want: []string{
			`scaleTargetRef = 5: expected an object, got a number (from environment variable scaleTargetRef)`,
			`interval = "abc": expected an integer, got a string (from environment variable interval)`,
			`startTime = "x: [": environment variable startTime is not valid YAML or JSON: yaml: line 1: did not find expected node content`,
			`maxReplicas = "": environment variable maxReplicas is not valid YAML or JSON: empty; unset it or give a value`,
			`apiConfig.prot: unknown field "prot" (did you mean "port"?) (from environment variable apiConfig)`,
			"logVerbosity = 11: must be between 0 and 10 (environment variable logVerbosity is set)",
			"apiConfig.port = 0: must be between 1 and 65535 while the API is enabled (environment variable apiConfig is set)",
		},
	}, {
		name: "a wrong type is not reported again as missing",
		file: strings.Replace(minimal[:strings.Index(minimal, "evaluate:")], "name: hello", "name: [hello]", 1) + "evaluate: shell\n",
		want: []string{
			`scaleTargetRef.name = ["hello"]: expected a string, got a list`,
			`evaluate = "shell": expected an object, got a string`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.file), tt.env)
			if err == nil {
				t.Fatalf("Parse accepted it: %s", mustJSON(t, c))
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Parse error is %T, not a *ValidationError: %v", err, err)
			}
			var got []string
			for _, p := range verr.Problems {
				got = append(got, p.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestParseSyntaxErrors(t *testing.T) {
	for _, doc := range []string{
		"a: [",
		"interval: 1\ninterval: 2\n", // duplicate keys
		`{"interval": 1`,
		"\t- x",
	} {
		_, err := Parse([]byte(doc), nil)
		var verr *ValidationError
		if err == nil || errors.As(err, &verr) || !strings.HasPrefix(err.Error(), "not valid YAML or JSON: ") {
			t.Errorf("Parse(%q) = %v, want a syntax error", doc, err)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	good := write("config.yaml", minimal)
	c, err := Load(good, []string{"interval=1000"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	expect(t, "interval", c.Interval, 1000)

	missing := filepath.Join(dir, "missing.yaml")
	if _, err := Load(missing, nil); err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v", err)
	}
	if _, err := Load(dir, nil); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Load of a directory: %v", err)
	}
	big := write("big.yaml", minimal+"#"+strings.Repeat("x", MaxFileBytes))
	if _, err := Load(big, nil); err == nil || !strings.Contains(err.Error(), big) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load of a big file: %v", err)
	}
	bad := write("bad.yaml", minimal+"interval: 0\n")
	_, err = Load(bad, nil)
	var verr *ValidationError
	if !errors.As(err, &verr) || !strings.HasPrefix(err.Error(), "config file "+bad+": invalid configuration: interval = 0") {
		t.Errorf("Load of an invalid file: %v", err)
	}
	syntax := write("syntax.yaml", "a: [")
	if _, err := Load(syntax, nil); err == nil || !strings.Contains(err.Error(), syntax) {
		t.Errorf("Load of a bad file: %v", err)
	}
}

// Keys match fields without regard to case, as the original's encoding/json decoding
// did, at every depth and in environment values; each is reported as a warning with the
// documented spelling. Environment variable names stay exact, as in the original.
func TestKeysIgnoreCase(t *testing.T) {
	file := `
ScaleTargetRef: {APIVERSION: apps/v1, Kind: Deployment, name: hello}
Metric:
  Type: shell
  shell: {EntryPoint: python, command: ["/metric.py"]}
evaluate: {type: http, http: {URL: "http://127.0.0.1:8080/evaluate", successcodes: [200, 201]}}
runmode: per-resource
apiconfig: {Port: 6000}
kubernetesMetricSpecs:
- Type: Resource
  resource: {name: cpu, Target: {type: Utilization, AverageUtilization: 50}}
`
	c, err := Parse([]byte(file), []string{`preScale={"TYPE": "shell", "shell": {"command": ["x"]}}`, "RUNMODE=per-pod", "Interval=5"})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "scaleTargetRef", *c.ScaleTargetRef, autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "hello"})
	expect(t, "metric.shell.entrypoint", c.Metric.Shell.Entrypoint, "python")
	expect(t, "evaluate.http.url", c.Evaluate.HTTP.URL, "http://127.0.0.1:8080/evaluate")
	expect(t, "evaluate.http.successCodes", c.Evaluate.HTTP.SuccessCodes, []int{200, 201})
	expect(t, "runMode (RUNMODE is not runMode)", c.RunMode, RunModePerResource)
	expect(t, "interval (Interval is not interval)", c.Interval, DefaultInterval)
	expect(t, "apiConfig.port", c.APIConfig.Port, 6000)
	expect(t, "averageUtilization", *c.KubernetesMetricSpecs[0].Resource.Target.AverageUtilization, int32(50))
	expect(t, "preScale.type", c.PreScale.Type, MethodShell)
	want := []string{
		`Metric: key "Metric" taken as "metric" (keys match without regard to case, as in the original); write it "metric"`,
		`ScaleTargetRef: key "ScaleTargetRef" taken as "scaleTargetRef"`,
		`apiconfig: key "apiconfig" taken as "apiConfig"`,
		`runmode: key "runmode" taken as "runMode"`,
		`scaleTargetRef.APIVERSION: key "APIVERSION" taken as "apiVersion"`,
		`scaleTargetRef.Kind: key "Kind" taken as "kind"`,
		`metric.Type: key "Type" taken as "type"`,
		`metric.shell.EntryPoint: key "EntryPoint" taken as "entrypoint"`,
		`evaluate.http.URL: key "URL" taken as "url"`,
		`evaluate.http.successcodes: key "successcodes" taken as "successCodes"`,
		`apiConfig.Port: key "Port" taken as "port"`,
		`kubernetesMetricSpecs[0].Type: key "Type" taken as "type"`,
		`kubernetesMetricSpecs[0].resource.Target: key "Target" taken as "target"`,
		`kubernetesMetricSpecs[0].resource.target.AverageUtilization: key "AverageUtilization" taken as "averageUtilization"`,
		`preScale.TYPE: key "TYPE" taken as "type" (keys match without regard to case, as in the original); write it "type" (from environment variable preScale)`,
	}
	if len(c.Warnings) != len(want) {
		t.Fatalf("warnings:\n%s\nwant %d", strings.Join(c.Warnings, "\n"), len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(c.Warnings[i], w) {
			t.Errorf("warning %d = %q, want it to start with %q", i, c.Warnings[i], w)
		}
	}
}

// REST API authorization needs the CustomPodAutoscaler's name: without CPA_NAME it is a
// configuration error naming the key, not a failure at the first request.
func TestAuthNeedsCPAName(t *testing.T) {
	file := minimal + "apiConfig: {auth: {enabled: true}}\n"
	_, err := Parse([]byte(file), nil)
	if err == nil || !strings.Contains(err.Error(), "apiConfig.auth.enabled = true: needs the environment variable CPA_NAME") {
		t.Fatalf("error = %v, want one naming apiConfig.auth.enabled and CPA_NAME", err)
	}
	c, err := Parse([]byte(file), []string{"CPA_NAME=my-cpa"})
	if err != nil || !c.APIConfig.Auth.Enabled {
		t.Fatalf("with CPA_NAME: %+v, %v", c, err)
	}
	if _, err := Parse([]byte(minimal+"apiConfig: {enabled: false, auth: {enabled: true}}\n"), nil); err != nil {
		t.Fatalf("auth of a disabled API needs nothing: %v", err)
	}
	if _, err := Parse([]byte(minimal+"apiConfig: {auth: {enabled: yes, tokens: 1}}\n"), nil); err == nil ||
		!strings.Contains(err.Error(), `apiConfig.auth.tokens: unknown field "tokens"`) || !strings.Contains(err.Error(), "apiConfig.auth.enabled") {
		t.Fatalf("bad auth block: %v", err)
	}
}

func expect[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}
