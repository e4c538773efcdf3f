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

// Defaults of Options. A method's own defaults (timeout, entrypoint, HTTP method, ...)
// are the config package's: it applies and checks them, and the constructors trust them.
const (
	// DefaultMaxOutputBytes caps standard output or a response body: 1 MiB.
	DefaultMaxOutputBytes = 1 << 20
	// DefaultMaxConnsPerHost bounds the HTTP runner's connection pool per host.
	DefaultMaxConnsPerHost = 64
)

// maxOutputLimit bounds Options.MaxOutputBytes.
const maxOutputLimit = 1 << 30

// Sentinel errors, matched with errors.Is on the errors Run returns.
var (
	// ErrTimeout: the method's timeout expired; a shell command's process group was killed.
	ErrTimeout = errors.New("timed out")
	// ErrOutputTooLarge: standard output or the response body exceeded MaxOutputBytes.
	ErrOutputTooLarge = errors.New("output too large")
)

// New builds the runner for m, dispatching on m.Type. m is a method as config.Load
// returns it: defaults applied and valid (see newCommon).
func New(m *config.Method, opts Options) (Runner, error) {
	if err := m.Validate("method"); err != nil {
		return nil, err
	}
	if m.Type == config.MethodHTTP {
		return NewHTTP(m, opts)
	}
	return NewShell(m, opts)
}

// common holds the settings both runners share, resolved from a Method and Options.
type common struct {
	timeout time.Duration
	maxOut  int
	log     *slog.Logger
}

// newCommon checks that m is a method of type typ that passes config's validation (so a
// method built in Go without config.Load gets a clear error, not a panic), then trusts it.
func newCommon(m *config.Method, typ string, opts Options) (common, error) {
	c := common{maxOut: DefaultMaxOutputBytes, log: opts.Logger}
	if err := m.Validate("method"); err != nil {
		return c, err
	}
	if m.Type != typ {
		return c, fmt.Errorf("method.type is %q, want %q", m.Type, typ)
	}
	c.timeout = time.Duration(m.Timeout) * time.Millisecond
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
