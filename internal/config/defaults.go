package config

import "runtime"

// Defaults of the top-level keys. They are the original's, except DefaultAPIHost.
const (
	DefaultNamespace               = "default"
	DefaultInterval                = 15000 // milliseconds
	DefaultStartTime               = 1     // milliseconds
	DefaultMinReplicas             = 1
	DefaultMaxReplicas             = 10
	DefaultRunMode                 = RunModePerPod
	DefaultAPIPort                 = 5000
	DefaultAPIRequestTimeout       = 60000 // milliseconds; not in the original
	DefaultInitialReadinessDelay   = 30    // seconds
	DefaultCPUInitializationPeriod = 300   // seconds

	// DefaultAPIHost is loopback, where the original listened on 0.0.0.0: the API can
	// change replicas and authenticates nobody unless apiConfig.auth says so, so it is
	// not open to the network unless the configuration says so.
	DefaultAPIHost = "127.0.0.1"
)

// Defaults of a method's keys, applied by Load. The original had none of them.
const (
	// DefaultTimeout (milliseconds) applies when a method has no timeout key. An
	// explicit timeout of 0 or less is a validation error.
	DefaultTimeout = 5000
	// DefaultShellEntrypoint applies when a shell method's entrypoint is empty.
	DefaultShellEntrypoint = "/bin/sh"
	// DefaultHTTPMethod applies when an http method's method is empty.
	DefaultHTTPMethod = "POST"
	// DefaultParameterMode applies when an http method's parameterMode is empty.
	DefaultParameterMode = ParameterModeBody
	// DefaultSuccessCode is the only success code when successCodes is empty.
	DefaultSuccessCode = 200
)

// shellConcurrencyPerCPU is how many shell calls per usable CPU run at once by default.
const shellConcurrencyPerCPU = 4

// defaultHTTPPerPodConcurrency is DefaultPerPodConcurrency for http methods.
const defaultHTTPPerPodConcurrency = 16

// Default returns the configuration used for every key the file and the environment
// leave out.
func Default() *Config {
	return &Config{
		Namespace:              DefaultNamespace,
		Interval:               DefaultInterval,
		StartTime:              DefaultStartTime,
		MinReplicas:            DefaultMinReplicas,
		MaxReplicas:            DefaultMaxReplicas,
		RunMode:                DefaultRunMode,
		PerPodConcurrency:      0,
		LogVerbosity:           0,
		DownscaleStabilization: 0,
		APIConfig: &APIConfig{
			Enabled:        true,
			UseHTTPS:       false,
			Port:           DefaultAPIPort,
			Host:           DefaultAPIHost,
			RequestTimeout: DefaultAPIRequestTimeout,
		},
		InitialReadinessDelay:   DefaultInitialReadinessDelay,
		CPUInitializationPeriod: DefaultCPUInitializationPeriod,
	}
}

// SetDefaults fills a method's empty shell entrypoint, HTTP method, parameter mode and
// success codes with their defaults. It leaves Timeout alone: Load defaults a timeout
// only when the key is absent, since an explicit 0 is an error.
func (m *Method) SetDefaults() {
	if m == nil {
		return
	}
	if m.Shell != nil && m.Shell.Entrypoint == "" {
		m.Shell.Entrypoint = DefaultShellEntrypoint
	}
	if h := m.HTTP; h != nil {
		if h.Method == "" {
			h.Method = DefaultHTTPMethod
		}
		if h.ParameterMode == "" {
			h.ParameterMode = DefaultParameterMode
		}
		if len(h.SuccessCodes) == 0 {
			h.SuccessCodes = []int{DefaultSuccessCode}
		}
	}
}

// DefaultPerPodConcurrency is how many per-pod metric calls run at once when
// perPodConcurrency is 0: 4 × GOMAXPROCS for a shell method and 16 for an http method
// (each call mostly waits on the network). A shell call is a process; with only one per
// core, a core idles while its call is reaped and the next started, which kept short
// commands 10–15 % slower (docs/benchmarks.md).
func DefaultPerPodConcurrency(m *Method) int {
	if m != nil && m.Type == MethodHTTP {
		return defaultHTTPPerPodConcurrency
	}
	return max(1, shellConcurrencyPerCPU*runtime.GOMAXPROCS(0))
}

// Methods lists the keys of Config holding a Method, in declaration order (the
// stages, then the hooks), with whether the key is required. It is the one list of stages and hooks: loading,
// validation and the runtime's stage runners all follow it.
func (c *Config) Methods() []NamedMethod {
	return []NamedMethod{
		{"metric", c.Metric, true},
		{"evaluate", c.Evaluate, true},
		{"preMetric", c.PreMetric, false},
		{"postMetric", c.PostMetric, false},
		{"preEvaluate", c.PreEvaluate, false},
		{"postEvaluate", c.PostEvaluate, false},
		{"preScale", c.PreScale, false},
		{"postScale", c.PostScale, false},
	}
}

// NamedMethod is one stage or hook of a Config: its key and its method (nil when absent).
type NamedMethod struct {
	Key      string
	Method   *Method
	Required bool
}
