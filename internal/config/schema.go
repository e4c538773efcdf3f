package config

import (
	"encoding"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/custompodautoscaler/cpa/internal/clip"
)

// The schema check walks a decoded JSON document (maps, slices, strings, json.Number,
// bools, nil) alongside the Go type it will be decoded into, by reflection over the
// json tags, so that the whole document is checked before decoding and every problem
// is reported with its path:
//   - a key that matches a field only when case is ignored (`runmode:`, `Metric:`) is
//     accepted under the field's spelling with a warning, as the original's decoding
//     (encoding/json) matched keys without regard to case; two keys for one field
//     (`runMode:` and `runmode:`) are an error, where encoding/json let the later win;
//   - keys that are not fields are reported, with the nearest field name when it is
//     close, and removed;
//   - values of the wrong JSON type are reported and removed (elements of a list are
//     set to null), so decoding the cleaned document cannot fail on them;
//   - numbers and booleans where a string is expected become strings, as YAML
//     decoding into a string did in the original (sigs.k8s.io/yaml), so `name: 123`
//     and a header value of `2` keep working.
//
// Types that decode themselves (json.Unmarshaler, such as resource.Quantity, or
// encoding.TextUnmarshaler) are not descended into: the value is handed to their
// decoder and its error reported.

// fieldInfo is one JSON key of a struct type.
type fieldInfo struct {
	name string
	typ  reflect.Type
}

// jsonFields lists the JSON keys of struct type t the way encoding/json sees them:
// the json tag's name or the Go name, "-" skipped, fields of untagged embedded structs
// (and k8s's `json:",inline"`) promoted unless a shallower field has the same name.
func jsonFields(t reflect.Type) []fieldInfo {
	var out []fieldInfo
	var embedded []reflect.Type
	seen := map[string]bool{}
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" {
			et := sf.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				embedded = append(embedded, et)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, fieldInfo{name: name, typ: sf.Type})
		}
	}
	for _, et := range embedded {
		for _, f := range jsonFields(et) {
			if !seen[f.name] {
				seen[f.name] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// schemaChecker collects the problems of one document.
type schemaChecker struct {
	problems []Problem
	// rejected are the paths whose values were removed for having the wrong type:
	// later problems at or below them are noise.
	rejected []string
	// note is appended to every problem's detail, e.g. to say which environment
	// variable the value came from.
	note string
	// warnings are things accepted but worth saying: keys spelled in another case.
	warnings []string
}

func (s *schemaChecker) add(path string, value any, detail string) {
	s.problems = append(s.problems, Problem{Field: path, Value: showJSON(value), Detail: detail + s.note})
}

func (s *schemaChecker) reject(path string, value any, detail string) {
	s.add(path, value, detail)
	s.rejected = append(s.rejected, path)
}

func (s *schemaChecker) typeError(path string, v any, want string) {
	s.reject(path, v, fmt.Sprintf("expected %s, got %s", want, describe(v)))
}

// check checks v against type t at path and returns the value to keep (possibly
// converted) and whether v is acceptable; objects are cleaned in place.
func (s *schemaChecker) check(v any, t reflect.Type, path string) (any, bool) {
	if v == nil {
		return nil, true // null decodes to the zero value or leaves the field alone
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if nv, ok, handled := s.checkSelfDecoding(v, t, path); handled {
		return nv, ok
	}

	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			s.typeError(path, v, "an object")
			return nil, false
		}
		s.object(m, t, path)
		return m, true
	case reflect.Map:
		return s.checkMap(v, t, path)
	case reflect.Slice, reflect.Array:
		return s.checkList(v, t, path)
	case reflect.String:
		switch x := v.(type) {
		case string:
			return x, true
		case json.Number:
			return string(x), true
		case bool:
			return strconv.FormatBool(x), true
		}
		s.typeError(path, v, "a string")
		return nil, false
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			s.typeError(path, v, "a boolean (true or false)")
			return nil, false
		}
		return v, true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return s.integer(v, t, path)
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			s.typeError(path, v, "a number")
			return nil, false
		}
		if _, err := strconv.ParseFloat(string(n), t.Bits()); err != nil {
			s.reject(path, v, "out of range")
			return nil, false
		}
		return v, true
	case reflect.Interface:
		return v, true
	}
	s.reject(path, v, "unsupported type "+t.String())
	return nil, false
}

// checkSelfDecoding hands v to the decoder of a type that decodes itself
// (json.Unmarshaler, encoding.TextUnmarshaler); handled is false for other types.
func (s *schemaChecker) checkSelfDecoding(v any, t reflect.Type, path string) (nv any, ok, handled bool) {
	pt := reflect.PointerTo(t)
	switch {
	case pt.Implements(reflect.TypeFor[json.Unmarshaler]()):
		raw, err := json.Marshal(v)
		if err == nil {
			err = json.Unmarshal(raw, reflect.New(t).Interface())
		}
		if err != nil {
			s.reject(path, v, "invalid value: "+err.Error())
			return nil, false, true
		}
		return v, true, true
	case pt.Implements(reflect.TypeFor[encoding.TextUnmarshaler]()):
		str, isStr := v.(string)
		if !isStr {
			s.typeError(path, v, "a string")
			return nil, false, true
		}
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(str)); err != nil {
			s.reject(path, v, "invalid value: "+err.Error())
			return nil, false, true
		}
		return v, true, true
	}
	return nil, false, false
}

// checkMap checks a map with string keys; a bad entry is removed.
func (s *schemaChecker) checkMap(v any, t reflect.Type, path string) (any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		s.typeError(path, v, "an object")
		return nil, false
	}
	for _, k := range sortedKeys(m) {
		kp := path + "[" + k + "]"
		if t.Key().Kind() != reflect.String {
			s.reject(kp, nil, "unsupported key") // no such map in the configuration types
			delete(m, k)
			continue
		}
		if nv, ok := s.check(m[k], t.Elem(), kp); ok {
			m[k] = nv
		} else {
			delete(m, k)
		}
	}
	return m, true
}

// checkList checks a list (or, for []byte, a base64 string); a bad element becomes null.
func (s *schemaChecker) checkList(v any, t reflect.Type, path string) (any, bool) {
	if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
		str, ok := v.(string)
		if !ok {
			s.typeError(path, v, "a base64 string")
			return nil, false
		}
		if _, err := base64.StdEncoding.DecodeString(str); err != nil {
			s.reject(path, v, "invalid base64: "+err.Error())
			return nil, false
		}
		return v, true
	}
	a, ok := v.([]any)
	if !ok {
		s.typeError(path, v, "a list")
		return nil, false
	}
	for i := range a {
		if nv, ok := s.check(a[i], t.Elem(), path+"["+strconv.Itoa(i)+"]"); ok {
			a[i] = nv
		} else {
			a[i] = nil
		}
	}
	return a, true
}

// object checks the keys of m against struct type t: known keys in declaration order,
// then unknown ones in sorted order.
func (s *schemaChecker) object(m map[string]any, t reflect.Type, path string) {
	fields := jsonFields(t)
	s.canonicalKeys(m, fields, path)
	known := make(map[string]bool, len(fields))
	for _, f := range fields {
		known[f.name] = true
		v, present := m[f.name]
		if !present {
			continue
		}
		if nv, ok := s.check(v, f.typ, joinPath(path, f.name)); ok {
			m[f.name] = nv
		} else {
			delete(m, f.name)
		}
	}
	for _, k := range sortedKeys(m) {
		if known[k] {
			continue
		}
		detail := fmt.Sprintf("unknown field %q", clip.String(k, 64))
		if near := nearest(k, fields); near != "" {
			detail += fmt.Sprintf(" (did you mean %q?)", near)
		}
		s.add(joinPath(path, clip.String(k, 64)), nil, detail)
		delete(m, k)
	}
}

// canonicalKeys renames the keys of m that match a field only when case is ignored to
// the field's name, with a warning, and reports two keys for one field.
func (s *schemaChecker) canonicalKeys(m map[string]any, fields []fieldInfo, path string) {
	exact := make(map[string]bool, len(fields))
	for _, f := range fields {
		exact[f.name] = true
	}
	spelled := map[string]string{} // field name -> the key that set it, when not exact
	for _, k := range sortedKeys(m) {
		if exact[k] {
			continue
		}
		i := slices.IndexFunc(fields, func(f fieldInfo) bool { return strings.EqualFold(f.name, k) })
		if i < 0 {
			continue // unknown: reported by object
		}
		name := fields[i].name
		_, set := m[name]
		if other, ok := spelled[name]; ok || set {
			if !ok {
				other = name
			}
			s.add(joinPath(path, clip.String(k, 64)), nil, fmt.Sprintf("%q and %q both set %q (keys match without regard to case); keep one", clip.String(other, 64), clip.String(k, 64), name))
			delete(m, k)
			continue
		}
		s.warnings = append(s.warnings, fmt.Sprintf("%s: key %q taken as %q (keys match without regard to case, as in the original); write it %q", joinPath(path, clip.String(k, 64)), clip.String(k, 64), name, name)+s.note)
		spelled[name] = k
		m[name] = m[k]
		delete(m, k)
	}
}

func (s *schemaChecker) integer(v any, t reflect.Type, path string) (any, bool) {
	n, ok := v.(json.Number)
	if !ok {
		s.typeError(path, v, "an integer")
		return nil, false
	}
	signed := t.Kind() <= reflect.Int64
	var err error
	if signed {
		_, err = strconv.ParseInt(string(n), 10, t.Bits())
	} else {
		_, err = strconv.ParseUint(string(n), 10, t.Bits())
	}
	if err == nil {
		return v, true
	}
	// Not a plain integer: 1e4 or 10.0 are integers written as floats.
	f, ferr := strconv.ParseFloat(string(n), 64)
	if ferr != nil || f != math.Trunc(f) {
		s.reject(path, v, "expected an integer")
		return nil, false
	}
	lo, hi := 0.0, math.Ldexp(1, t.Bits())
	if signed {
		lo, hi = -math.Ldexp(1, t.Bits()-1), math.Ldexp(1, t.Bits()-1)
	}
	if f < lo || f >= hi {
		s.reject(path, v, fmt.Sprintf("out of range for a %d-bit integer", t.Bits()))
		return nil, false
	}
	if signed {
		return json.Number(strconv.FormatInt(int64(f), 10)), true
	}
	return json.Number(strconv.FormatUint(uint64(f), 10)), true
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}

// nearest returns the field name closest to key (ignoring case) when it is close
// enough to be a likely typo, else "".
func nearest(key string, fields []fieldInfo) string {
	if len(key) > 64 {
		return ""
	}
	limit := 1
	switch {
	case len(key) > 8:
		limit = 3
	case len(key) > 4:
		limit = 2
	}
	best, bestDist := "", limit+1
	lk := strings.ToLower(key)
	for _, f := range fields {
		if d := editDistance(lk, strings.ToLower(f.name)); d < bestDist {
			best, bestDist = f.name, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b, in bytes:
// insertions, deletions, substitutions and transpositions of adjacent bytes.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// describe names the JSON type of a decoded value.
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// showJSON renders a decoded value for a problem message, clipped.
func showJSON(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return strconv.Quote(clip.String(x, 100))
	case json.Number:
		return clip.String(string(x), 100)
	case bool:
		return strconv.FormatBool(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return clip.String(string(b), 100)
}
