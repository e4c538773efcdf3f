package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/custompodautoscaler/cpa/internal/clip"
)

// MaxFileBytes bounds the configuration file; a ConfigMap holds at most 1 MiB.
const MaxFileBytes = 1 << 20

// Load reads the configuration file at path (YAML or JSON) and returns the
// configuration Parse makes of it and of environ (in os.Environ's "KEY=value" form).
func Load(path string, environ []string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("reading config file %s: larger than %d bytes", path, MaxFileBytes)
	}
	cfg, err := Parse(data, environ)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return cfg, nil
}

// Parse builds a configuration from a file's content and the environment:
//
//  1. the document (YAML or JSON; empty means no keys) over Default(); a key set to
//     null counts as absent;
//  2. then, for each top-level key, an environment variable of exactly that name:
//     taken as the text itself for string keys (namespace, runMode), parsed as YAML or
//     JSON for the others; an object merges over the object the file and defaults gave,
//     anything else replaces it;
//  3. then method defaults: a timeout when the key is absent, and Method.SetDefaults;
//  4. then Validate.
//
// Keys match fields without regard to case, as in the original; each one not spelled as
// documented adds a line to Config.Warnings. Environment variable names, as in the
// original, must match a top-level key exactly.
//
// Unknown keys, values of the wrong type and everything Validate finds are returned
// together as a *ValidationError; a document that is not YAML or JSON is a plain error.
func Parse(data []byte, environ []string) (*Config, error) {
	doc, err := parseDocument(data)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	root, ok := doc.(map[string]any)
	if doc == nil {
		root = map[string]any{}
	} else if !ok {
		return nil, &ValidationError{Problems: []Problem{{
			Value:  showJSON(doc),
			Detail: "the configuration must be an object (a YAML mapping or JSON object), got " + describe(doc),
		}}}
	}
	stripNulls(root)

	file := &schemaChecker{}
	file.object(root, reflect.TypeFor[Config](), "")
	env := environMap(environ)
	fromEnv := file.applyEnv(root, env)
	problems, rejected, warnings := file.problems, file.rejected, file.warnings

	for _, nm := range (&Config{}).Methods() {
		if m, ok := root[nm.Key].(map[string]any); ok {
			if _, ok := m["timeout"]; !ok {
				m["timeout"] = json.Number(strconv.Itoa(DefaultTimeout))
			}
		}
	}

	cfg := Default()
	raw, err := json.Marshal(root)
	if err == nil {
		err = json.Unmarshal(raw, cfg)
	}
	if err != nil {
		// The schema check removed every value that could fail to decode.
		problems = append(problems, Problem{Detail: "decoding: " + err.Error()})
	}
	for _, nm := range cfg.Methods() {
		nm.Method.SetDefaults()
	}

	if err := cfg.Validate(); err != nil {
		for _, p := range err.(*ValidationError).Problems {
			if within(p.Field, rejected) {
				continue // already reported as a wrong type
			}
			if top := topKey(p.Field); fromEnv[top] {
				p.Detail += " (environment variable " + top + " is set)"
			}
			problems = append(problems, p)
		}
	}
	if a := cfg.APIConfig; a != nil && a.Enabled && a.Auth != nil && a.Auth.Enabled && env[CPANameEnv] == "" {
		problems = append(problems, Problem{Field: "apiConfig.auth.enabled", Value: "true",
			Detail: "needs the environment variable " + CPANameEnv + ": requests are authorized against the CustomPodAutoscaler of that name in namespace (the operator sets it; set it yourself when running the runtime alone)"})
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	cfg.Warnings = warnings
	return cfg, nil
}

// applyEnv merges into root the environment variables named like a top-level key, each
// checked like the file (its problems and warnings are s's, noting the variable), and
// returns which keys they set.
func (s *schemaChecker) applyEnv(root map[string]any, env map[string]string) map[string]bool {
	fromEnv := map[string]bool{}
	for _, f := range jsonFields(reflect.TypeFor[Config]()) {
		text, ok := env[f.name]
		if !ok {
			continue
		}
		fromEnv[f.name] = true
		var v any = text
		if f.typ.Kind() != reflect.String {
			var err error
			v, err = parseDocument([]byte(text))
			if err == nil && v == nil {
				err = fmt.Errorf("empty; unset it or give a value")
			}
			if err != nil {
				s.problems = append(s.problems, Problem{
					Field:  f.name,
					Value:  strconv.Quote(clip.String(text, 100)),
					Detail: fmt.Sprintf("environment variable %s is not valid YAML or JSON: %v", f.name, err),
				})
				s.rejected = append(s.rejected, f.name)
				continue
			}
			stripNulls(v)
		}
		s.note = " (from environment variable " + f.name + ")"
		v, ok = s.check(v, f.typ, f.name)
		if ok {
			merge(root, f.name, v)
		}
	}
	s.note = ""
	return fromEnv
}

// parseDocument decodes YAML or JSON (JSON is YAML) into maps, slices, strings,
// json.Number, bools and nil. Duplicate keys are an error; of several YAML documents
// only the first is read, as in the original.
func parseDocument(data []byte) (any, error) {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// stripNulls removes the null members of every object in v.
func stripNulls(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil {
				delete(x, k)
			} else {
				stripNulls(e)
			}
		}
	case []any:
		for _, e := range x {
			stripNulls(e)
		}
	}
}

// merge sets dst[key] to v, merging v into an object already there if v is an object.
func merge(dst map[string]any, key string, v any) {
	if vm, ok := v.(map[string]any); ok {
		if dm, ok := dst[key].(map[string]any); ok {
			for k, e := range vm {
				merge(dm, k, e)
			}
			return
		}
	}
	dst[key] = v
}

// environMap indexes "KEY=value" entries; a later entry wins.
func environMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// within reports whether field is one of paths or below one of them.
func within(field string, paths []string) bool {
	for _, p := range paths {
		if field == p || strings.HasPrefix(field, p+".") || strings.HasPrefix(field, p+"[") {
			return true
		}
	}
	return false
}

// topKey is the top-level key of a field path.
func topKey(field string) string {
	if i := strings.IndexAny(field, ".["); i >= 0 {
		return field[:i]
	}
	return field
}
