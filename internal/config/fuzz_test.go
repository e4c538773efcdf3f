package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// checkParsed asserts what must hold of every Parse result: an error or a config,
// never both or neither; errors that are not syntax errors are *ValidationError with
// at least one problem; an accepted config passes Validate and survives a round trip
// through JSON unchanged.
func checkParsed(t *testing.T, c *Config, err error) {
	t.Helper()
	if err != nil {
		if c != nil {
			t.Fatalf("Parse returned a config and an error: %v", err)
		}
		var verr *ValidationError
		if errors.As(err, &verr) {
			if len(verr.Problems) == 0 {
				t.Fatal("ValidationError with no problems")
			}
		} else if !strings.HasPrefix(err.Error(), "not valid YAML or JSON: ") {
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
		_ = err.Error()
		return
	}
	if c == nil {
		t.Fatal("Parse returned neither a config nor an error")
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("accepted config fails Validate: %v", err)
	}
	first, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	again, err := Parse(first, nil)
	if err != nil {
		t.Fatalf("re-parsing an accepted config as JSON: %v\n%s", err, first)
	}
	second, err := json.Marshal(again)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("round trip changed the config:\n%s\n%s", first, second)
	}
}

func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		minimal,
		"",
		"null",
		"[]",
		"5",
		"a: [",
		minimal + "interval: 1e4\nminReplicas: 1.5\nnamespace: 123\n",
		minimal + "apiConfig: {port: 6000, useHTTPS: true, certFile: c, keyFile: k}\n",
		minimal + "preMetric: {type: http, timeout: 0, http: {url: 'http://x', headers: {A: 1}, successCodes: []}}\n",
		minimal + "kubernetesMetricSpecs: [{type: Resource, resource: {name: cpu, target: {type: AverageValue, averageValue: 100m}}}]\n",
		minimal + "kubernetesMetricSpecs: [{type: Pods, pods: {metric: {name: x, selector: {matchLabels: {a: b}}}, target: {type: AverageValue, averageValue: 1.5}}}]\n",
		minimal + "metrc: {}\nscaleTargetRef: {apiVersion: 5}\n",
		`{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"x"},"metric":{"type":"shell","shell":{"command":["x"]}},"evaluate":{"type":"shell","shell":{"entrypoint":"/e"}}}`,
		"a: &a [*a, *a]\n",
		// Keys in another case (accepted with a warning) and two keys for one field.
		strings.NewReplacer("scaleTargetRef", "ScaleTargetRef", "kind", "KIND", "entrypoint", "entryPoint").Replace(minimal) + "runmode: per-resource\nApiConfig: {PORT: 6000}\n",
		minimal + "interval: 1000\nINTERVAL: 2000\nInterval: 3000\n",
		minimal + "kubernetesMetricSpecs: [{Type: Resource, Resource: {Name: cpu, Target: {Type: Utilization, AverageUtilization: 50}}}]\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, nil)
		checkParsed(t, c, err)
	})
}

func FuzzEnv(f *testing.F) {
	keys := jsonFields(reflect.TypeFor[Config]())
	for i, f2 := range keys {
		for _, v := range []string{"", "1", "0", "-1", "abc", "true", "{}", "[]", "null", "1.5", "3000000000", `{"port": 6000}`, "x: [", "per-resource"} {
			f.Add(uint8(i), v)
		}
		switch f2.name {
		case "metric", "evaluate", "preScale":
			f.Add(uint8(i), `{"type":"http","http":{"url":"http://x/","successCodes":[200,204]}}`)
			f.Add(uint8(i), "type: shell\ntimeout: 0\nshell: {command: [x]}\n")
			f.Add(uint8(i), `{"Type":"http","HTTP":{"URL":"http://x/","successcodes":[200]}}`)
		case "scaleTargetRef":
			f.Add(uint8(i), `{"apiVersion":"apps/v1","kind":"StatefulSet","name":"y"}`)
		case "kubernetesMetricSpecs":
			f.Add(uint8(i), `[{"type":"External","external":{"metric":{"name":"q"},"target":{"type":"Value","value":"3"}}}]`)
		}
	}
	f.Fuzz(func(t *testing.T, key uint8, value string) {
		name := keys[int(key)%len(keys)].name
		c, err := Parse([]byte(minimal), []string{name + "=" + value})
		checkParsed(t, c, err)
	})
}
