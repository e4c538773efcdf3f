package config

import (
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/custompodautoscaler/cpa/internal/clip"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Field is the path of the key, e.g. "metric.shell.command", "apiConfig.port",
	// "kubernetesMetricSpecs[0].type", "metric.http.headers[X-Id]"; empty for the
	// document as a whole.
	Field string
	// Value is the offending value as written (strings quoted); empty when the key is
	// missing or the value does not matter.
	Value string
	// Detail says what is wrong and, where it helps, what is expected.
	Detail string
}

// String renders the problem as "field = value: detail".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Field)
	if p.Value != "" {
		if p.Field != "" {
			b.WriteString(" = ")
		}
		b.WriteString(p.Value)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(p.Detail)
	return b.String()
}

// ValidationError lists every problem found in a configuration.
type ValidationError struct {
	Problems []Problem
}

// maxListedProblems bounds the length of ValidationError.Error; Problems keeps them all.
const maxListedProblems = 50

// Error renders one problem on one line, or several as an indented list.
func (e *ValidationError) Error() string {
	switch len(e.Problems) {
	case 0:
		return "invalid configuration"
	case 1:
		return "invalid configuration: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%d problems):", len(e.Problems))
	for i, p := range e.Problems {
		if i == maxListedProblems {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Problems)-i)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Validate checks a configuration whose defaults are applied (as Load returns it) and
// returns a *ValidationError listing every problem, or nil.
func (c *Config) Validate() error {
	var v validator
	v.config(c)
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems}
}

type validator struct {
	problems []Problem
}

// add records a problem; value is rendered with %q for strings and %v otherwise, and
// omitted when nil.
func (v *validator) add(field string, value any, format string, args ...any) {
	v.problems = append(v.problems, Problem{Field: field, Value: showGo(value), Detail: fmt.Sprintf(format, args...)})
}

func showGo(value any) string {
	switch x := value.(type) {
	case nil:
		return ""
	case string:
		return strconv.Quote(clip.String(x, 100))
	}
	return clip.String(fmt.Sprint(value), 100)
}

func (v *validator) config(c *Config) {
	if c == nil {
		v.add("", nil, "no configuration")
		return
	}
	v.scaleTargetRef(c.ScaleTargetRef)
	if c.Namespace == "" {
		v.add("namespace", nil, "required")
	} else if len(validation.IsDNS1123Label(c.Namespace)) > 0 {
		v.add("namespace", c.Namespace, "not a namespace name: at most 63 lower case letters, digits and '-', starting and ending with a letter or digit")
	}

	for _, nm := range c.Methods() {
		if nm.Method == nil {
			if nm.Required {
				v.add(nm.Key, nil, "required: a method with type shell or http")
			}
			continue
		}
		v.method(nm.Key, nm.Method)
	}

	v.millis("interval", int64(c.Interval))
	v.millis("startTime", c.StartTime)
	if c.MinReplicas < 0 {
		v.add("minReplicas", c.MinReplicas, "must be 0 or more")
	}
	if c.MaxReplicas < 1 {
		v.add("maxReplicas", c.MaxReplicas, "must be 1 or more")
	}
	if c.MinReplicas > c.MaxReplicas {
		v.add("minReplicas", c.MinReplicas, "must not be more than maxReplicas (%d)", c.MaxReplicas)
	}
	switch c.RunMode {
	case RunModePerPod, RunModePerResource:
	default:
		v.add("runMode", c.RunMode, "must be %s or %s", RunModePerPod, RunModePerResource)
	}
	if c.PerPodConcurrency < 0 {
		v.add("perPodConcurrency", c.PerPodConcurrency, "must be 0 (automatic) or more")
	}
	if c.LogVerbosity < 0 || c.LogVerbosity > 10 {
		v.add("logVerbosity", c.LogVerbosity, "must be between 0 and 10")
	}
	v.seconds("downscaleStabilization", int64(c.DownscaleStabilization))

	v.apiConfig(c.APIConfig)

	for i := range c.KubernetesMetricSpecs {
		v.metricSpec(fmt.Sprintf("kubernetesMetricSpecs[%d]", i), &c.KubernetesMetricSpecs[i])
	}
	v.seconds("initialReadinessDelay", c.InitialReadinessDelay)
	v.seconds("cpuInitializationPeriod", c.CPUInitializationPeriod)
}

func (v *validator) scaleTargetRef(ref *autoscalingv2.CrossVersionObjectReference) {
	if ref == nil {
		v.add("scaleTargetRef", nil, "required: the resource to scale (apiVersion, kind, name)")
		return
	}
	if ref.Kind == "" {
		v.add("scaleTargetRef.kind", nil, "required")
	}
	if ref.Name == "" {
		v.add("scaleTargetRef.name", nil, "required")
	}
	if ref.APIVersion == "" {
		v.add("scaleTargetRef.apiVersion", nil, "required, e.g. apps/v1")
	} else if _, err := schema.ParseGroupVersion(ref.APIVersion); err != nil {
		v.add("scaleTargetRef.apiVersion", ref.APIVersion, "not an apiVersion (group/version, or version for the core group)")
	}
}

func (v *validator) apiConfig(a *APIConfig) {
	if a == nil {
		v.add("apiConfig", nil, "required")
		return
	}
	if !a.Enabled {
		return
	}
	if a.Port < 1 || a.Port > 65535 {
		v.add("apiConfig.port", a.Port, "must be between 1 and 65535 while the API is enabled")
	}
	if a.UseHTTPS {
		if a.CertFile == "" {
			v.add("apiConfig.certFile", nil, "required when useHTTPS is true")
		}
		if a.KeyFile == "" {
			v.add("apiConfig.keyFile", nil, "required when useHTTPS is true")
		}
	}
	v.millis("apiConfig.requestTimeout", int64(a.RequestTimeout))
}

// Durations in the configuration must fit a time.Duration once converted.
const (
	maxMillis  = math.MaxInt64 / int64(time.Millisecond)
	maxSeconds = math.MaxInt64 / int64(time.Second)
)

// millis checks a positive duration in milliseconds.
func (v *validator) millis(field string, ms int64) {
	switch {
	case ms <= 0:
		v.add(field, ms, "must be a positive number of milliseconds")
	case ms > maxMillis:
		v.add(field, ms, "must be at most %d milliseconds (about 292 years)", maxMillis)
	}
}

// seconds checks a duration of 0 or more seconds.
func (v *validator) seconds(field string, s int64) {
	switch {
	case s < 0:
		v.add(field, s, "must be 0 or more seconds")
	case s > maxSeconds:
		v.add(field, s, "must be at most %d seconds (about 292 years)", maxSeconds)
	}
}

// Validate checks one method as Config.Validate does, naming its fields under key (e.g.
// "metric"), and returns a *ValidationError or nil. The runners of internal/execute call
// it, so the rules live here only.
func (m *Method) Validate(key string) error {
	var v validator
	if m == nil {
		v.add(key, nil, "required: a method with type shell or http")
	} else {
		v.method(key, m)
	}
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems}
}

func (v *validator) method(path string, m *Method) {
	switch m.Type {
	case MethodShell:
		if m.Shell == nil {
			v.add(path+".shell", nil, "required for type %s", MethodShell)
		} else {
			v.shell(path+".shell", m.Shell)
		}
	case MethodHTTP:
		if m.HTTP == nil {
			v.add(path+".http", nil, "required for type %s", MethodHTTP)
		} else {
			v.http(path+".http", m.HTTP)
		}
	case "":
		v.add(path+".type", nil, "required: %s or %s", MethodShell, MethodHTTP)
	default:
		v.add(path+".type", m.Type, "must be %s or %s", MethodShell, MethodHTTP)
	}
	if m.Timeout <= 0 {
		v.add(path+".timeout", m.Timeout, "must be a positive number of milliseconds (leave it out for the default, %d)", DefaultTimeout)
	} else {
		v.millis(path+".timeout", int64(m.Timeout))
	}
}

func (v *validator) shell(path string, s *Shell) {
	switch {
	case s.Entrypoint == "":
		v.add(path+".entrypoint", nil, "required")
	case len(s.Command) == 0 && s.Entrypoint == DefaultShellEntrypoint:
		v.add(path+".command", nil, "required when the entrypoint is %s: without a command the shell would run the stage's JSON input as a script", DefaultShellEntrypoint)
	}
}

func (v *validator) http(path string, h *HTTP) {
	if h.Method == "" {
		v.add(path+".method", nil, "required")
	} else if !isToken(h.Method) {
		v.add(path+".method", h.Method, "not an HTTP method (a token such as GET or POST)")
	}
	if h.URL == "" {
		v.add(path+".url", nil, "required: an absolute http:// or https:// URL")
	} else if u, err := url.Parse(h.URL); err != nil {
		v.add(path+".url", h.URL, "not a URL: %v", unwrapURLError(err))
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(path+".url", h.URL, "must be an absolute http:// or https:// URL")
	}
	for _, name := range slices.Sorted(maps.Keys(h.Headers)) {
		if !isToken(name) {
			v.add(path+".headers", name, "not a valid header name")
		} else if !validHeaderValue(h.Headers[name]) {
			v.add(path+".headers["+name+"]", h.Headers[name], "header values must not contain control characters such as line breaks")
		}
	}
	if len(h.SuccessCodes) == 0 {
		v.add(path+".successCodes", nil, "required: at least one status code")
	}
	for i, code := range h.SuccessCodes {
		if code < 100 || code > 599 {
			v.add(fmt.Sprintf("%s.successCodes[%d]", path, i), code, "not an HTTP status code (100 to 599)")
		}
	}
	switch h.ParameterMode {
	case ParameterModeQuery, ParameterModeBody:
	case "":
		v.add(path+".parameterMode", nil, "required: %s or %s", ParameterModeQuery, ParameterModeBody)
	default:
		v.add(path+".parameterMode", h.ParameterMode, "must be %s or %s", ParameterModeQuery, ParameterModeBody)
	}
	if h.ClientCert != "" && h.ClientKey == "" {
		v.add(path+".clientKey", nil, "required when clientCert is set")
	}
	if h.ClientKey != "" && h.ClientCert == "" {
		v.add(path+".clientCert", nil, "required when clientKey is set")
	}
}

func (v *validator) metricSpec(path string, s *autoscalingv2.MetricSpec) {
	sources := []struct {
		typ     autoscalingv2.MetricSourceType
		key     string
		present bool
	}{
		{autoscalingv2.ResourceMetricSourceType, "resource", s.Resource != nil},
		{autoscalingv2.ContainerResourceMetricSourceType, "containerResource", s.ContainerResource != nil},
		{autoscalingv2.PodsMetricSourceType, "pods", s.Pods != nil},
		{autoscalingv2.ObjectMetricSourceType, "object", s.Object != nil},
		{autoscalingv2.ExternalMetricSourceType, "external", s.External != nil},
	}
	names := make([]string, len(sources))
	known := false
	for i, src := range sources {
		names[i] = string(src.typ)
		known = known || src.typ == s.Type
	}
	switch {
	case s.Type == "":
		v.add(path+".type", nil, "required: one of %s", strings.Join(names, ", "))
		return
	case !known:
		v.add(path+".type", string(s.Type), "must be one of %s", strings.Join(names, ", "))
		return
	}
	ok := true
	for _, src := range sources {
		switch {
		case src.typ == s.Type && !src.present:
			v.add(path+"."+src.key, nil, "required for type %s", s.Type)
			ok = false
		case src.typ != s.Type && src.present:
			v.add(path+"."+src.key, nil, "must not be set for type %s", s.Type)
		}
	}
	if ok {
		v.metricSource(path, s)
	}
}

// metricSource checks what selects the metric and the target type, which decides how
// it is gathered; target values are the user's logic's business and are not required.
func (v *validator) metricSource(path string, s *autoscalingv2.MetricSpec) {
	util, avg, val := autoscalingv2.UtilizationMetricType, autoscalingv2.AverageValueMetricType, autoscalingv2.ValueMetricType
	switch s.Type {
	case autoscalingv2.ResourceMetricSourceType:
		p := path + ".resource"
		if s.Resource.Name == "" {
			v.add(p+".name", nil, "required: a resource such as cpu or memory")
		}
		v.targetType(p+".target.type", s.Resource.Target.Type, util, avg)
	case autoscalingv2.ContainerResourceMetricSourceType:
		p := path + ".containerResource"
		if s.ContainerResource.Name == "" {
			v.add(p+".name", nil, "required: a resource such as cpu or memory")
		}
		if s.ContainerResource.Container == "" {
			v.add(p+".container", nil, "required: the name of the container to measure")
		}
		v.targetType(p+".target.type", s.ContainerResource.Target.Type, util, avg)
	case autoscalingv2.PodsMetricSourceType:
		p := path + ".pods"
		v.metricIdentifier(p+".metric", &s.Pods.Metric)
		v.targetType(p+".target.type", s.Pods.Target.Type, avg)
	case autoscalingv2.ObjectMetricSourceType:
		p := path + ".object"
		d := s.Object.DescribedObject
		if d.Kind == "" {
			v.add(p+".describedObject.kind", nil, "required")
		}
		if d.Name == "" {
			v.add(p+".describedObject.name", nil, "required")
		}
		if _, err := schema.ParseGroupVersion(d.APIVersion); err != nil {
			v.add(p+".describedObject.apiVersion", d.APIVersion, "not a group/version: %v", err)
		}
		v.metricIdentifier(p+".metric", &s.Object.Metric)
		v.targetType(p+".target.type", s.Object.Target.Type, val, avg)
	case autoscalingv2.ExternalMetricSourceType:
		p := path + ".external"
		v.metricIdentifier(p+".metric", &s.External.Metric)
		v.targetType(p+".target.type", s.External.Target.Type, val, avg)
	}
}

func (v *validator) targetType(field string, t autoscalingv2.MetricTargetType, allowed ...autoscalingv2.MetricTargetType) {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		if t == a {
			return
		}
		names[i] = string(a)
	}
	if t == "" {
		v.add(field, nil, "required: %s", strings.Join(names, " or "))
		return
	}
	v.add(field, string(t), "must be %s", strings.Join(names, " or "))
}

func (v *validator) metricIdentifier(path string, m *autoscalingv2.MetricIdentifier) {
	if m.Name == "" {
		v.add(path+".name", nil, "required")
	}
	if m.Selector != nil {
		if _, err := metav1.LabelSelectorAsSelector(m.Selector); err != nil {
			v.add(path+".selector", nil, "invalid label selector: %v", err)
		}
	}
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), the syntax of
// methods and header names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue rejects control characters other than horizontal tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
