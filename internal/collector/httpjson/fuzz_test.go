package httpjson

import (
	"math"
	"testing"
)

// FuzzEvaluate feeds arbitrary documents and paths to the path evaluation: it must never
// panic, and a nil error always comes with a finite number.
func FuzzEvaluate(f *testing.F) {
	docs := []string{
		`{"some-metric":{"value":12.5}}`,
		`{"items":[{"v":1},{"v":2},{"v":"3"}],"arr":[3,-1.5,4]}`,
		`{"a.b":{"c":[[1,2],[3]]}}`,
		`[1e308, 1e308, null, true, "x", {}]`,
		`{"x": []}`,
		`{"x": -0.0004e-3}`,
		`{"x": 1`,
		``,
	}
	paths := []struct {
		path string
		eval bool
	}{
		{"$.some-metric.value", false},
		{"$.items[*].v", false},
		{"$..v", false},
		{"$['a.b'].c[0][1]", false},
		{"$.arr[-1:]", false},
		{"$[?(@ > 1)]", false},
		{"avg($.items[*].v) * 2", true},
		{"sqrt($.x) / 0", true},
		{"$.arr", true},
	}
	for i, d := range docs {
		p := paths[i%len(paths)]
		f.Add([]byte(d), p.path, p.eval, uint8(i))
	}
	for i, p := range paths {
		f.Add([]byte(docs[i%len(docs)]), p.path, p.eval, uint8(i))
	}
	aggs := []Aggregator{None, Avg, Min, Max, Sum}
	f.Fuzz(func(t *testing.T, doc []byte, path string, eval bool, agg uint8) {
		a := aggs[int(agg)%len(aggs)]
		var p *Path
		var err error
		if eval {
			p, err = NewEval(path, a)
		} else {
			p, err = NewJSONPath(path, a)
		}
		if err != nil {
			return
		}
		v, err := p.Evaluate(doc)
		if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
			t.Fatalf("Evaluate(%q) with %q = %v and no error", doc, path, v)
		}
	})
}
