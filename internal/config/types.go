// Package config holds the runtime's configuration: its types, defaults, loading from a
// YAML or JSON file with environment overrides, and up-front validation.
//
// The keys, defaults and environment overrides are those of the original Custom Pod
// Autoscaler, so an existing config.yaml moves over unchanged; the fixes (validation,
// sane method defaults) are listed in docs/configuration.md.
package config

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// Run modes: how often the metric stage runs and what it is given.
const (
	RunModePerPod      = "per-pod"
	RunModePerResource = "per-resource"
)

// Run types, passed to every stage and hook so user logic can tell a scheduled run from
// an API call (and avoid side effects on a dry run).
const (
	RunTypeScaler    = "scaler"
	RunTypeAPI       = "api"
	RunTypeAPIDryRun = "api_dry_run"
)

// CPANameEnv is the environment variable naming the CustomPodAutoscaler the runtime runs
// for; the operator sets it. The status, events and REST API authorization use it.
const CPANameEnv = "CPA_NAME"

// Method types.
const (
	MethodShell = "shell"
	MethodHTTP  = "http"
)

// HTTP parameter modes: where the stage's JSON input goes.
const (
	ParameterModeQuery = "query"
	ParameterModeBody  = "body"
)

// Config is one autoscaler's configuration. Field names and JSON keys are the original's;
// every top-level key can be overridden by an environment variable of the same name.
type Config struct {
	ScaleTargetRef *autoscalingv2.CrossVersionObjectReference `json:"scaleTargetRef"`
	Namespace      string                                     `json:"namespace"`

	Metric       *Method `json:"metric"`
	Evaluate     *Method `json:"evaluate"`
	PreMetric    *Method `json:"preMetric"`
	PostMetric   *Method `json:"postMetric"`
	PreEvaluate  *Method `json:"preEvaluate"`
	PostEvaluate *Method `json:"postEvaluate"`
	PreScale     *Method `json:"preScale"`
	PostScale    *Method `json:"postScale"`

	// Interval between cycles, milliseconds.
	Interval int `json:"interval"`
	// StartTime aligns the first cycle to a multiple of this many milliseconds since the epoch.
	StartTime   int64  `json:"startTime"`
	MinReplicas int32  `json:"minReplicas"`
	MaxReplicas int32  `json:"maxReplicas"`
	RunMode     string `json:"runMode"`
	// PerPodConcurrency bounds how many per-pod metric calls run at once; 0 picks a
	// default for the method (see DefaultPerPodConcurrency).
	PerPodConcurrency int   `json:"perPodConcurrency"`
	LogVerbosity      int32 `json:"logVerbosity"`
	// DownscaleStabilization window, seconds.
	DownscaleStabilization int `json:"downscaleStabilization"`

	APIConfig *APIConfig `json:"apiConfig"`

	KubernetesMetricSpecs    []autoscalingv2.MetricSpec `json:"kubernetesMetricSpecs"`
	RequireKubernetesMetrics bool                       `json:"requireKubernetesMetrics"`
	// InitialReadinessDelay and CPUInitializationPeriod are seconds, as the HPA's flags.
	InitialReadinessDelay   int64 `json:"initialReadinessDelay"`
	CPUInitializationPeriod int64 `json:"cpuInitializationPeriod"`

	// Warnings are what Parse accepted but the user should fix (keys spelled in another
	// case); the runtime logs them at start.
	Warnings []string `json:"-"`
}

// APIConfig configures the REST API server.
type APIConfig struct {
	Enabled  bool   `json:"enabled"`
	UseHTTPS bool   `json:"useHTTPS"`
	Port     int    `json:"port"`
	Host     string `json:"host"`
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
	// RequestTimeout bounds each request's work and the writing of its response,
	// milliseconds. Not in the original.
	RequestTimeout int `json:"requestTimeout"`
	// Auth configures authentication and authorization of requests. Not in the original.
	Auth *APIAuth `json:"auth,omitempty"`
}

// APIAuth turns on authentication (TokenReview) and authorization (SubjectAccessReview
// on the CustomPodAutoscaler named by $CPA_NAME) of every REST API request.
type APIAuth struct {
	Enabled bool `json:"enabled"`
}

// Method is how one stage or hook runs user logic: a shell command or an HTTP call.
type Method struct {
	Type string `json:"type"`
	// Timeout in milliseconds; defaulted when absent.
	Timeout int    `json:"timeout"`
	Shell   *Shell `json:"shell,omitempty"`
	HTTP    *HTTP  `json:"http,omitempty"`
}

// Shell runs a command with the stage's JSON on standard input; standard output is the result.
type Shell struct {
	Entrypoint string   `json:"entrypoint"`
	Command    []string `json:"command"`
	LogStderr  bool     `json:"logStderr"`
}

// HTTP calls a URL with the stage's JSON as a query parameter or the request body; the
// response body is the result.
type HTTP struct {
	Method        string            `json:"method"`
	URL           string            `json:"url"`
	Headers       map[string]string `json:"headers,omitempty"`
	SuccessCodes  []int             `json:"successCodes"`
	ParameterMode string            `json:"parameterMode"`
	CACert        string            `json:"caCert,omitempty"`
	ClientCert    string            `json:"clientCert,omitempty"`
	ClientKey     string            `json:"clientKey,omitempty"`
}
