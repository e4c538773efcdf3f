package main

import (
	"strings"
	"testing"
)

// The original's flags keep their names and defaults, so its manifests keep working.
func TestOriginalFlags(t *testing.T) {
	o := &options{}
	fs := newFlagSet(o)
	for name, def := range map[string]string{
		"lister-kubeconfig":                       "",
		"kubeconfig":                              "",
		"prometheus-server":                       "",
		"prometheus-server-token-file":            "",
		"additional-prometheus-server":            "[]",
		"additional-prometheus-server-token-file": "[]",
		"skipper-ingress-metrics":                 "false",
		"skipper-routegroup-metrics":              "false",
		"skipper-backends-annotation":             "[]",
		"aws-external-metrics":                    "false",
		"aws-region":                              "[]",
		"zmon-kariosdb-endpoint":                  "",
		"influxdb-address":                        "",
		"scaling-schedule":                        "false",
		"scaling-schedule-default-scaling-window": "10m0s",
		"scaling-schedule-ramp-steps":             "10",
		"scaling-schedule-default-time-zone":      "Europe/Berlin",
		"horizontal-pod-autoscaler-tolerance":     "0.1",
		"influxdb-token":                          "",
		"influxdb-org":                            "",
		"zmon-token-name":                         "zmon",
		"token":                                   "",
		"credentials-dir":                         "/meta/credentials",
		"metrics-address":                         ":7979",
		"metrics-ttl":                             "15m0s",
		"garbage-collector-interval":              "10m0s",
		"default-collection-interval":             "1m0s",
		"resource-update-interval":                "30s",
		"disregard-incompatible-hpas":             "false",
		"enable-custom-metrics-api":               "true",
		"enable-external-metrics-api":             "true",
		"kube-client-qps":                         "0",
		"kube-client-burst":                       "0",
		"secure-port":                             "443",
		"bind-address":                            "0.0.0.0",
		"tls-cert-file":                           "",
		"tls-private-key-file":                    "",
		"authentication-kubeconfig":               "",
		"authorization-kubeconfig":                "",
		"client-ca-file":                          "",
		"requestheader-client-ca-file":            "",
		"v":                                       "0",
	} {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("--%s is missing", name)
			continue
		}
		if f.DefValue != def {
			t.Errorf("--%s defaults to %q, want %q", name, f.DefValue, def)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // substrings of the error; none: valid
	}{
		{args: nil},
		{args: []string{"--prometheus-server", "http://prom:9090", "--skipper-ingress-metrics", "--additional-prometheus-server", "b=http://b:9090"}},
		{args: []string{"--enable-custom-metrics-api=false", "--enable-external-metrics-api=false"}, want: []string{"nothing to serve"}},
		{args: []string{"--skipper-ingress-metrics"}, want: []string{"need --prometheus-server"}},
		{args: []string{"--aws-external-metrics"}, want: []string{"needs at least one --aws-region"}},
		{args: []string{"--zmon-kariosdb-endpoint", "kairosdb:8080"}, want: []string{"--zmon-kariosdb-endpoint"}},
		{args: []string{"--zmon-kariosdb-endpoint", "http://kairosdb:8080"}},
		{args: []string{"--scaling-schedule", "--scaling-schedule-ramp-steps", "0", "--horizontal-pod-autoscaler-tolerance", "1.5"}, want: []string{"--scaling-schedule-ramp-steps", "--horizontal-pod-autoscaler-tolerance"}},
		{args: []string{"--scaling-schedule-default-time-zone", "Mars/Olympus"}, want: []string{"Mars/Olympus"}},
		{args: []string{"--influxdb-address", "influx:8086", "--influxdb-token", "t\n"}, want: []string{"--influxdb-address", "--influxdb-token"}},
		{args: []string{"--influxdb-address", "http://influx:8086", "--influxdb-token", "t", "--influxdb-org", "o"}},
		{args: []string{"--aws-external-metrics", "--aws-region", "eu-central-1", "--aws-region", "eu-west-1"}},
		{args: []string{"--metrics-ttl", "30s", "--default-collection-interval", "1m"}, want: []string{"is not below --metrics-ttl"}},
		{args: []string{"--metrics-ttl", "0s"}, want: []string{"--metrics-ttl 0s: must be positive"}},
		{args: []string{"--prometheus-server", "prom:9090"}, want: []string{"prom:9090"}},
		{args: []string{"--max-concurrent-collections", "0", "--kube-client-qps", "-1"}, want: []string{"at least 1", "must not be negative"}},
	} {
		o := &options{}
		fs := newFlagSet(o)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		err := o.validate()
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%v: %v", tc.args, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%v: valid, want errors %q", tc.args, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", tc.args, err, w)
			}
		}
	}
}

func TestHelpAndBadFlagExitCodes(t *testing.T) {
	if rc := run([]string{"--help"}); rc != 0 {
		t.Errorf("--help exits %d, want 0", rc)
	}
	if rc := run([]string{"--no-such-flag"}); rc != 2 {
		t.Errorf("an unknown flag exits %d, want 2", rc)
	}
	if rc := run([]string{"--metrics-ttl", "-1s"}); rc != 2 {
		t.Errorf("an invalid flag value exits %d, want 2", rc)
	}
}
