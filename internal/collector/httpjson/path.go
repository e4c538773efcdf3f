package httpjson

import (
	"errors"
	"fmt"
	"math"

	"github.com/spyzhov/ajson"
)

// Aggregator folds the numbers a path yields into one.
type Aggregator string

// The aggregators the json-path collectors understand.
const (
	None Aggregator = ""
	Avg  Aggregator = "avg"
	Min  Aggregator = "min"
	Max  Aggregator = "max"
	Sum  Aggregator = "sum"
)

// ParseAggregator checks s is one of avg, min, max, sum or empty (none).
func ParseAggregator(s string) (Aggregator, error) {
	switch a := Aggregator(s); a {
	case None, Avg, Min, Max, Sum:
		return a, nil
	}
	return None, fmt.Errorf("unknown aggregator %q (want avg, min, max or sum)", s)
}

// apply folds xs; xs is never empty.
func (a Aggregator) apply(xs []float64) float64 {
	out := xs[0]
	switch a {
	case Min:
		for _, x := range xs[1:] {
			out = math.Min(out, x)
		}
	case Max:
		for _, x := range xs[1:] {
			out = math.Max(out, x)
		}
	case Sum, Avg:
		for _, x := range xs[1:] {
			out += x
		}
		if a == Avg {
			out /= float64(len(xs))
		}
	}
	return out
}

// Path extracts one number from a JSON document: a JSONPath (json-key) or an ajson script
// expression (json-eval), with an aggregator for results of several numbers.
type Path struct {
	key        string   // the source text, for errors
	commands   []string // parsed json-key; nil for an eval
	eval       string   // json-eval expression
	aggregator Aggregator
}

// NewJSONPath parses a json-key JSONPath such as "$.http_server.rps" or "$.items[*].value".
func NewJSONPath(path string, agg Aggregator) (p *Path, err error) {
	defer recoverInto(&err)
	if path == "" {
		return nil, errors.New("empty JSONPath")
	}
	cmds, err := ajson.ParseJSONPath(path)
	if err != nil {
		return nil, fmt.Errorf("invalid JSONPath: %w", err)
	}
	if len(cmds) == 0 || cmds[0] != "$" {
		return nil, errors.New(`invalid JSONPath: must start with "$"`)
	}
	return &Path{key: path, commands: cmds, aggregator: agg}, nil
}

// NewEval parses a json-eval script expression such as "avg($.items[*].value)".
func NewEval(expr string, agg Aggregator) (p *Path, err error) {
	defer recoverInto(&err)
	if expr == "" {
		return nil, errors.New("empty expression")
	}
	// With no document, Eval only parses the expression.
	if _, err := ajson.Eval(nil, expr); err != nil {
		return nil, fmt.Errorf("invalid expression: %w", err)
	}
	return &Path{key: expr, eval: expr, aggregator: agg}, nil
}

// String is the path's source text.
func (p *Path) String() string { return p.key }

// Evaluate parses doc and returns the one number the path selects: a single number, or
// the aggregate of several numbers (several matches, or one array of numbers). No match,
// an empty array, a non-number, NaN or ±Inf is an error, never 0.
func (p *Path) Evaluate(doc []byte) (v float64, err error) {
	// The library evaluates untrusted documents and expressions; a panic in it must not
	// take the adapter down.
	defer recoverInto(&err)
	root, err := ajson.Unmarshal(doc)
	if err != nil {
		return 0, fmt.Errorf("malformed JSON: %w", err)
	}
	var nodes []*ajson.Node
	if p.eval != "" {
		n, err := ajson.Eval(root, p.eval)
		if err != nil {
			return 0, fmt.Errorf("json-eval %q: %w", p.key, err)
		}
		if n != nil {
			nodes = []*ajson.Node{n}
		}
	} else {
		nodes, err = ajson.ApplyJSONPath(root, p.commands)
		if err != nil {
			return 0, fmt.Errorf("json-key %q: %w", p.key, err)
		}
	}
	return p.reduce(nodes)
}

func (p *Path) reduce(nodes []*ajson.Node) (float64, error) {
	var xs []float64
	switch {
	case len(nodes) == 0:
		return 0, fmt.Errorf("%q matched nothing", p.key)
	case len(nodes) == 1 && nodes[0].IsArray():
		items, err := nodes[0].GetArray()
		if err != nil {
			return 0, fmt.Errorf("%q: %w", p.key, err)
		}
		if len(items) == 0 {
			return 0, fmt.Errorf("%q matched an empty array", p.key)
		}
		if p.aggregator == None {
			return 0, fmt.Errorf("%q matched an array of %d values and no aggregator is set (avg, min, max or sum)", p.key, len(items))
		}
		if xs, err = numbers(p.key, items); err != nil {
			return 0, err
		}
	case len(nodes) > 1 && p.aggregator == None:
		return 0, fmt.Errorf("%q matched %d values and no aggregator is set (avg, min, max or sum)", p.key, len(nodes))
	default:
		var err error
		if xs, err = numbers(p.key, nodes); err != nil {
			return 0, err
		}
	}
	v := p.aggregator.apply(xs)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q: the result %v is not a finite number", p.key, v)
	}
	return v, nil
}

func numbers(key string, nodes []*ajson.Node) ([]float64, error) {
	xs := make([]float64, 0, len(nodes))
	for i, n := range nodes {
		if n == nil || !n.IsNumeric() {
			return nil, fmt.Errorf("%q: value %d is %s, not a number", key, i, describe(n))
		}
		x, err := n.GetNumeric()
		if err != nil {
			return nil, fmt.Errorf("%q: value %d: %w", key, i, err)
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%q: value %d is %v, not a finite number", key, i, x)
		}
		xs = append(xs, x)
	}
	return xs, nil
}

func describe(n *ajson.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Type() {
	case ajson.Null:
		return "null"
	case ajson.String:
		return "a string"
	case ajson.Bool:
		return "a boolean"
	case ajson.Array:
		return "an array"
	case ajson.Object:
		return "an object"
	}
	return "not a number"
}

func recoverInto(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("evaluating the JSON path failed: %v", r)
	}
}
