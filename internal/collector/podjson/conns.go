package podjson

import (
	"context"
	"net"
	"sync"
)

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// conns tracks a transport's connections by the address dialled, so that those to pods
// no longer asked (deleted, rescheduled, scaled away) are closed after a collection
// instead of idling until IdleConnTimeout. http.Transport can only close all its idle
// connections, which would throw away the ones the next collection reuses.
type conns struct {
	mu     sync.Mutex
	byAddr map[string]map[*trackedConn]struct{}
}

func newConns() *conns { return &conns{byAddr: map[string]map[*trackedConn]struct{}{}} }

// track wraps dial so every connection it opens is tracked until closed.
func (t *conns) track(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: conn, owner: t, addr: addr}
		t.mu.Lock()
		set := t.byAddr[addr]
		if set == nil {
			set = map[*trackedConn]struct{}{}
			t.byAddr[addr] = set
		}
		set[tc] = struct{}{}
		t.mu.Unlock()
		return tc, nil
	}
}

// keepOnly closes the connections to every address not in keep (all with a nil keep).
// The caller makes sure none of those is in use.
func (t *conns) keepOnly(keep map[string]struct{}) {
	var stale []*trackedConn
	t.mu.Lock()
	for addr, set := range t.byAddr {
		if _, ok := keep[addr]; ok {
			continue
		}
		for c := range set {
			stale = append(stale, c)
		}
	}
	t.mu.Unlock()
	for _, c := range stale {
		_ = c.Close() // the transport's read loop sees the close and drops the connection
	}
}

// open counts the tracked connections (tests).
func (t *conns) open() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, set := range t.byAddr {
		n += len(set)
	}
	return n
}

type trackedConn struct {
	net.Conn
	owner *conns
	addr  string
	once  sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		t := c.owner
		t.mu.Lock()
		if set := t.byAddr[c.addr]; set != nil {
			delete(set, c)
			if len(set) == 0 {
				delete(t.byAddr, c.addr)
			}
		}
		t.mu.Unlock()
	})
	return c.Conn.Close()
}
