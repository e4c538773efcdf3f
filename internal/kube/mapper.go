package kube

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/clock"
)

// RefreshingMapper is a RESTMapper over the API server's discovery, cached in memory. A
// kind or resource it does not know (a CRD installed after the start) makes it read
// discovery again, at most once per interval, so lookups of kinds that do not exist
// cannot turn into a discovery storm.
type RefreshingMapper struct {
	*restmapper.DeferredDiscoveryRESTMapper
	clock clock.PassiveClock
	every time.Duration

	mu   sync.Mutex
	last time.Time
}

var _ meta.RESTMapper = (*RefreshingMapper)(nil)

// NewRefreshingMapper returns a mapper that re-reads discovery on a miss at most once
// per every.
func NewRefreshingMapper(d discovery.DiscoveryInterface, clk clock.PassiveClock, every time.Duration) *RefreshingMapper {
	return &RefreshingMapper{
		DeferredDiscoveryRESTMapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(d)),
		clock:                       clk,
		every:                       every,
		last:                        clk.Now(),
	}
}

// retry reports whether a miss should re-read discovery now.
func (m *RefreshingMapper) retry(err error) bool {
	if err == nil || !meta.IsNoMatchError(err) {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.clock.Since(m.last) < m.every {
		return false
	}
	m.last = m.clock.Now()
	m.Reset()
	return true
}

// RESTMapping implements meta.RESTMapper, re-reading discovery on a miss.
func (m *RefreshingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	r, err := m.DeferredDiscoveryRESTMapper.RESTMapping(gk, versions...)
	if m.retry(err) {
		r, err = m.DeferredDiscoveryRESTMapper.RESTMapping(gk, versions...)
	}
	return r, err
}

// RESTMappings implements meta.RESTMapper, re-reading discovery on a miss.
func (m *RefreshingMapper) RESTMappings(gk schema.GroupKind, versions ...string) ([]*meta.RESTMapping, error) {
	r, err := m.DeferredDiscoveryRESTMapper.RESTMappings(gk, versions...)
	if m.retry(err) {
		r, err = m.DeferredDiscoveryRESTMapper.RESTMappings(gk, versions...)
	}
	return r, err
}

// KindFor implements meta.RESTMapper, re-reading discovery on a miss.
func (m *RefreshingMapper) KindFor(resource schema.GroupVersionResource) (schema.GroupVersionKind, error) {
	r, err := m.DeferredDiscoveryRESTMapper.KindFor(resource)
	if m.retry(err) {
		r, err = m.DeferredDiscoveryRESTMapper.KindFor(resource)
	}
	return r, err
}

// ResourcesFor implements meta.RESTMapper, re-reading discovery on a miss.
func (m *RefreshingMapper) ResourcesFor(resource schema.GroupVersionResource) ([]schema.GroupVersionResource, error) {
	r, err := m.DeferredDiscoveryRESTMapper.ResourcesFor(resource)
	if m.retry(err) {
		r, err = m.DeferredDiscoveryRESTMapper.ResourcesFor(resource)
	}
	return r, err
}

// ResourceFor implements meta.RESTMapper, re-reading discovery on a miss.
func (m *RefreshingMapper) ResourceFor(resource schema.GroupVersionResource) (schema.GroupVersionResource, error) {
	r, err := m.DeferredDiscoveryRESTMapper.ResourceFor(resource)
	if m.retry(err) {
		r, err = m.DeferredDiscoveryRESTMapper.ResourceFor(resource)
	}
	return r, err
}
