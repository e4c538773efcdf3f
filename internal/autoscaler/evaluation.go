package autoscaler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/custompodautoscaler/cpa/internal/clip"
	"github.com/custompodautoscaler/cpa/pkg/evaluate"
)

const excerptLen = 200

// ParseEvaluation reads the evaluate stage's output, which must be a JSON object with an
// integer "targetReplicas" between 0 and 2147483647. Other fields are ignored, as the
// original did; anything else (not JSON, no targetReplicas, a fraction, a string, a
// negative count, trailing data) is an error, so nothing is scaled on bad output.
func ParseEvaluation(out []byte) (*evaluate.Evaluation, error) {
	fail := func(format string, args ...any) (*evaluate.Evaluation, error) {
		return nil, fmt.Errorf("invalid evaluation %s: %s; want a JSON object like {\"targetReplicas\": 3}", clip.Quote(out, excerptLen), fmt.Sprintf(format, args...))
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil {
		return fail("not a JSON object: %v", err)
	}
	if fields == nil {
		return fail("not a JSON object")
	}
	if len(bytes.TrimSpace(out[dec.InputOffset():])) > 0 {
		return fail("unexpected data after the JSON object")
	}
	raw, ok := fields["targetReplicas"]
	if !ok {
		return fail("no \"targetReplicas\" field")
	}
	vd := json.NewDecoder(bytes.NewReader(raw))
	vd.UseNumber()
	var v any
	_ = vd.Decode(&v) // raw came out of a successful decode
	num, ok := v.(json.Number)
	if !ok {
		return fail("targetReplicas must be a number, got %s", raw)
	}
	n, err := strconv.ParseInt(num.String(), 10, 64)
	if err != nil {
		return fail("targetReplicas must be a whole number, got %s", num)
	}
	if n < 0 || n > math.MaxInt32 {
		return fail("targetReplicas must be between 0 and %d, got %d", math.MaxInt32, n)
	}
	return &evaluate.Evaluation{TargetReplicas: int32(n)}, nil
}
