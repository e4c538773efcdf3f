// Package execute runs the user logic of one stage or hook: a shell command fed the
// stage's JSON on standard input, or an HTTP call carrying it as a query parameter or body.
//
// Every call is bounded: a timeout that kills the command's whole process group (or aborts
// the request), a cap on the output kept, and errors that say what ran and how it failed,
// with a short excerpt of standard error or of the response body. See docs/methods.md.
package execute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/custompodautoscaler/cpa/internal/config"
)

// Runner runs one stage or hook's user logic with the JSON input and returns its raw output.
type Runner interface {
	Run(ctx context.Context, input []byte) ([]byte, error)
}

// Options tune runners built by New, NewShell and NewHTTP. The zero value is usable.
type Options struct {
	// Logger receives debug lines per call and, for shell methods with logStderr,
	// the command's standard error. Nil discards.
	Logger *slog.Logger
	// MaxOutputBytes caps a command's standard output or a response body; more is an
	// error. 0 means DefaultMaxOutputBytes.
	MaxOutputBytes int
	// MaxConnsPerHost caps the HTTP runner's connections per host, both open at once
	// and kept idle for reuse; calls beyond it wait for a free connection (within their
	// timeout). Set it to at least the per-pod concurrency. 0 means DefaultMaxConnsPerHost.
	MaxConnsPerHost int
}

// Defaults applied by the constructors.
const (
	// DefaultTimeout is used when a method's timeout is 0 (the config default).
	DefaultTimeout = 5000 * time.Millisecond
	// DefaultMaxOutputBytes caps standard output or a response body: 1 MiB.
	DefaultMaxOutputBytes = 1 << 20
	// DefaultMaxConnsPerHost bounds the HTTP runner's connection pool per host.
	DefaultMaxConnsPerHost = 64
	// DefaultEntrypoint is used when a shell method's entrypoint is empty.
	DefaultEntrypoint = "/bin/sh"
)

// Limits on the settings themselves, against overflow.
const (
	maxTimeoutMs   = math.MaxInt64 / int64(time.Millisecond)
	maxOutputLimit = 1 << 30
)

// Sentinel errors, matched with errors.Is on the errors Run returns.
var (
	// ErrTimeout: the method's timeout expired; a shell command's process group was killed.
	ErrTimeout = errors.New("timed out")
	// ErrOutputTooLarge: standard output or the response body exceeded MaxOutputBytes.
	ErrOutputTooLarge = errors.New("output too large")
)

// New builds the runner for m, dispatching on m.Type.
func New(m *config.Method, opts Options) (Runner, error) {
	if m == nil {
		return nil, errors.New("method is not configured")
	}
	switch m.Type {
	case config.MethodShell:
		return NewShell(m, opts)
	case config.MethodHTTP:
		return NewHTTP(m, opts)
	default:
		return nil, fmt.Errorf("unknown execution method %q (want %q or %q)", m.Type, config.MethodShell, config.MethodHTTP)
	}
}

// common holds the settings both runners share, resolved from a Method and Options.
type common struct {
	timeout time.Duration
	maxOut  int
	log     *slog.Logger
}

func newCommon(m *config.Method, opts Options) (common, error) {
	c := common{timeout: DefaultTimeout, maxOut: DefaultMaxOutputBytes, log: opts.Logger}
	switch {
	case m.Timeout < 0:
		return c, fmt.Errorf("timeout must not be negative, got %d ms", m.Timeout)
	case int64(m.Timeout) > maxTimeoutMs:
		return c, fmt.Errorf("timeout %d ms is too large (at most %d ms)", m.Timeout, maxTimeoutMs)
	case m.Timeout > 0:
		c.timeout = time.Duration(m.Timeout) * time.Millisecond
	}
	switch {
	case opts.MaxOutputBytes < 0:
		return c, fmt.Errorf("maximum output size must not be negative, got %d", opts.MaxOutputBytes)
	case opts.MaxOutputBytes > maxOutputLimit:
		return c, fmt.Errorf("maximum output size %d is too large (at most %d)", opts.MaxOutputBytes, maxOutputLimit)
	case opts.MaxOutputBytes > 0:
		c.maxOut = opts.MaxOutputBytes
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// runError is the error Run returns: a complete message plus what errors.Is and
// errors.As should find (a sentinel above, a context error, *exec.ExitError, ...).
type runError struct {
	msg    string
	causes []error
}

func (e *runError) Error() string   { return e.msg }
func (e *runError) Unwrap() []error { return e.causes }

func newRunError(msg string, causes ...error) error {
	kept := causes[:0:0]
	for _, c := range causes {
		if c != nil {
			kept = append(kept, c)
		}
	}
	return &runError{msg: msg, causes: kept}
}

// errTimerFired is the cancel cause set when a runner's own timeout expires, telling it
// apart from the caller's context ending.
var errTimerFired = errors.New("method timeout expired")
