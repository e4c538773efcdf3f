package kube

import (
	"net/http"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// RequestCounter counts the HTTP requests a client configuration sends to the API
// server, so the runtime can report what each cycle costs the control plane.
type RequestCounter struct{ n atomic.Uint64 }

// Instrument makes every client built from cfg count its requests in c.
func (c *RequestCounter) Instrument(cfg *rest.Config) {
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			c.n.Add(1)
			return rt.RoundTrip(r)
		})
	})
}

// Count returns the number of requests sent so far.
func (c *RequestCounter) Count() uint64 { return c.n.Load() }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
