//go:build e2e && (linux || darwin)

package influxdb

// The collector against a real InfluxDB: influxd 1.8.3, built from its Go module once and
// cached outside the work tree, started on a free loopback port with Flux enabled. InfluxDB
// 1.8 answers Flux on the v2 query API that InfluxDB 2 serves, through the same client.
//
//	go test -tags e2e ./internal/collector/influxdb/
//
// The first run builds influxd (about a minute) into
// ${CPA_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/custom-pod-autoscaler}/bin/influxd-v1.8.3.
// When it cannot be built the test skips, except under CI=true, where it fails.

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/custompodautoscaler/cpa/internal/collector"
	"github.com/custompodautoscaler/cpa/test/e2e/framework"
)

func TestRealInfluxDB(t *testing.T) {
	address := framework.StartInfluxDB(t)

	framework.InfluxDBPost(t, address+"/query", "application/x-www-form-urlencoded", url.Values{"q": {"CREATE DATABASE cpa"}}.Encode())
	// The points' time is the server's now, inside every query's range.
	framework.InfluxDBPost(t, address+"/write?db=cpa", "text/plain", strings.Join([]string{
		`queue_depth,app=a value=42.5`,
		`queue_depth,app=b value=17.25`,
		`jobs,app=a count=7i`,
		`status,app=a state="busy"`,
	}, "\n"))

	from := func(measurement string) string {
		return fmt.Sprintf(`from(bucket: "cpa/autogen") |> range(start: -1h) |> filter(fn: (r) => r._measurement == %q)`, measurement)
	}
	clock := clocktesting.NewFakePassiveClock(now)
	opts := Options{Address: address, Org: "-", Clock: clock}

	values := []struct {
		name, query, want string
	}{
		{"the README's example", from("queue_depth") + `
  |> group()
  |> max()
  // Rename "_value" to "metricvalue" for letting the metrics server properly unmarshal the result.
  |> rename(columns: {_value: "metricvalue"})
  |> keep(columns: ["metricvalue"])`, "42500m"},
		{"map to metricvalue", from("queue_depth") + ` |> filter(fn: (r) => r.app == "b") |> map(fn: (r) => ({metricvalue: r._value}))`, "17250m"},
		{"_value of an aggregate", from("queue_depth") + ` |> group() |> sum()`, "59750m"},
		{"an integer field", from("jobs"), "7"},
	}
	for _, tc := range values {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(collector.Config{Kind: collector.External, Name: "m", Keys: map[string]string{KeyQuery: tc.query},
				Labels: map[string]string{"type": "influxdb"}}, opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, err := c.Collect(ctx)
			if err != nil {
				t.Fatalf("Collect: %v", err)
			}
			if len(got) != 1 || got[0].Value.String() != tc.want || !got[0].Timestamp.Equal(now) || got[0].Labels["type"] != "influxdb" {
				t.Errorf("values %+v, want one of %s at %v with the selector's labels", got, tc.want, now)
			}
		})
	}

	failures := []struct {
		name, query, want string
	}{
		{"no data", from("nothing"), "the query returned no data; "},
		{"a series per app", from("queue_depth"), "the query returned 2 records in 2 tables"},
		{"a string field", from("status"), `column "_value" is the string "busy", not a number`},
		{"no such database", `from(bucket: "nope/autogen") |> range(start: -1h)`, "the server answered 500 Internal Server Error: failed to initialize execute state: no database"},
		{"a syntax error", `from(bucket: "cpa/autogen"`, "the server answered 500 Internal Server Error: "},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(collector.Config{Kind: collector.External, Name: "m", Keys: map[string]string{KeyQuery: tc.query}}, opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, err := c.Collect(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Collect = %v, %v; want an error containing %q", got, err, tc.want)
			}
		})
	}
}
