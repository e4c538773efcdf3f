package execute

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/custompodautoscaler/cpa/internal/clip"
	"github.com/custompodautoscaler/cpa/internal/config"
)

// pipeGrace bounds how long Run waits, once the command has exited and its process group
// has been killed, for its pipes to close. Only a process that left the group (setsid)
// can hold them open that long.
const pipeGrace = 250 * time.Millisecond

// maxCommandDisplay caps the command as quoted in errors and logs.
const maxCommandDisplay = 256

// Shell runs a command, not through a shell unless the entrypoint is one, with the input
// on standard input; its standard output is the result. The command runs in its own
// process group, which is killed on timeout, on cancellation, when the output exceeds the
// cap, and after the command exits (so no background process outlives a call).
// A Shell is safe for concurrent use.
type Shell struct {
	common
	argv0     string // the entrypoint as configured, passed as argv[0]
	path      string // the entrypoint resolved at construction; "" to resolve per call
	args      []string
	display   string // the command, quoted for errors and logs
	logStderr bool
}

// NewShell builds the runner for a shell method with its defaults applied (config.Load,
// or Method.SetDefaults and a timeout).
func NewShell(m *config.Method, opts Options) (*Shell, error) {
	c, err := newCommon(m, config.MethodShell, opts)
	if err != nil {
		return nil, err
	}
	s := &Shell{
		common:    c,
		argv0:     m.Shell.Entrypoint,
		args:      append([]string(nil), m.Shell.Command...),
		logStderr: m.Shell.LogStderr,
	}
	s.display = shellJoin(append([]string{s.argv0}, s.args...))
	// Resolve once; a missing entrypoint is reported by Run, so one that appears later
	// (a volume mounted after start) still works.
	if p, err := exec.LookPath(s.argv0); err == nil {
		s.path = p
	}
	return s, nil
}

// Run runs the command once with input on its standard input and returns its standard
// output, unmodified (a trailing newline is kept).
func (s *Shell) Run(ctx context.Context, input []byte) ([]byte, error) {
	start := time.Now()
	out, stderr, err := s.run(ctx, input)
	if stderr != nil && stderr.total > 0 && s.logStderr {
		s.log.LogAttrs(ctx, slog.LevelInfo, "shell command stderr",
			slog.String("command", s.display), slog.Bool("failed", err != nil), slog.String("stderr", stderr.String()))
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		attrs := []slog.Attr{
			slog.String("command", s.display),
			slog.Duration("duration", time.Since(start)),
			slog.Int("inputBytes", len(input)),
			slog.Int("outputBytes", len(out)),
		}
		if stderr != nil {
			attrs = append(attrs, slog.Int64("stderrBytes", stderr.total))
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		s.log.LogAttrs(ctx, slog.LevelDebug, "shell command finished", attrs...)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Shell) run(ctx context.Context, input []byte) ([]byte, *capBuffer, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, newRunError(fmt.Sprintf("shell command %q not started: %v", s.display, context.Cause(ctx)), err)
	}
	path := s.path
	if path == "" {
		p, err := exec.LookPath(s.argv0)
		if err != nil {
			return nil, nil, s.startError(err)
		}
		path = p
	}

	// One context carries all three reasons to kill the group: the caller's context,
	// the timeout and the output cap, told apart by the cause.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(s.timeout, func() { cancel(errTimerFired) })
	defer timer.Stop()

	cmd, inW, outR, errR, err := s.start(runCtx, path)
	if err != nil {
		return nil, nil, err
	}

	var (
		wg       sync.WaitGroup
		writeErr error
		out      []byte
		over     bool
		readErr  error
		stderr   capBuffer
	)
	wg.Go(func() {
		if len(input) > 0 {
			_, writeErr = inW.Write(input)
		}
		inW.Close()
	})
	wg.Go(func() {
		out, over, readErr = readCapped(outR, s.maxOut)
		if over {
			cancel(ErrOutputTooLarge) // kills the group through cmd.Cancel
		}
	})
	wg.Go(func() { readAllInto(&stderr, errR) })

	waitErr := cmd.Wait()
	// Kill whatever the command left behind in its group: the pipes then close.
	_ = killProcessGroup(cmd.Process)
	deadline := time.Now().Add(pipeGrace)
	_ = outR.SetReadDeadline(deadline)
	_ = errR.SetReadDeadline(deadline)
	_ = inW.SetWriteDeadline(deadline)
	wg.Wait()
	closeAll(outR, errR)
	if over {
		return nil, &stderr, newRunError(fmt.Sprintf("shell command %q: output exceeds %d bytes (process group killed)", s.display, s.maxOut), ErrOutputTooLarge)
	}
	if err := s.outcome(ctx, runCtx, &stderr, waitErr, readErr, writeErr); err != nil {
		return nil, &stderr, err
	}
	return out, &stderr, nil
}

// start starts the command in its own process group, its standard streams on pipes, and
// returns it with the parent's ends: standard input to write, output and error to read.
func (s *Shell) start(ctx context.Context, path string) (cmd *exec.Cmd, inW, outR, errR *os.File, err error) {
	pipeErr := func(err error) error {
		return newRunError(fmt.Sprintf("shell command %q: creating pipe: %v", s.display, err), err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, nil, pipeErr(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW)
		return nil, nil, nil, nil, pipeErr(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW, outR, outW)
		return nil, nil, nil, nil, pipeErr(err)
	}
	// The pipes are ours (*os.File), so exec starts no copying goroutines and Wait
	// returns as soon as the command exits; leftovers are dealt with by run.
	cmd = exec.CommandContext(ctx, path, s.args...)
	cmd.Args[0] = s.argv0
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	setProcessGroup(cmd)
	cmd.Cancel = func() error { return killProcessGroup(cmd.Process) }
	if err := cmd.Start(); err != nil {
		closeAll(inR, inW, outR, outW, errR, errW)
		return nil, nil, nil, nil, s.startError(err)
	}
	closeAll(inR, outW, errW)
	return cmd, inW, outR, errR, nil
}

// outcome turns how a finished command went into Run's error, nil for success: the
// command's exit (status, signal), the reason its group was killed (timeout, the
// caller's context), or a pipe that failed.
func (s *Shell) outcome(ctx, runCtx context.Context, stderr *capBuffer, waitErr, readErr, writeErr error) error {
	switch {
	case waitErr == nil && readErr == nil:
		// A command may exit without reading all its input: a broken pipe is not an error.
		if writeErr != nil && !errors.Is(writeErr, syscall.EPIPE) && !errors.Is(writeErr, os.ErrDeadlineExceeded) {
			return newRunError(fmt.Sprintf("shell command %q: writing standard input: %v", s.display, writeErr), writeErr)
		}
		return nil
	case runCtx.Err() != nil && waitErr != nil:
		cause := context.Cause(runCtx)
		if cause == errTimerFired {
			return newRunError(fmt.Sprintf("shell command %q timed out after %s (process group killed)%s", s.display, s.timeout, stderrSuffix(stderr)), ErrTimeout)
		}
		return newRunError(fmt.Sprintf("shell command %q interrupted (process group killed): %v", s.display, cause), ctx.Err(), cause)
	}
	var exitErr *exec.ExitError
	if errors.As(waitErr, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return newRunError(fmt.Sprintf("shell command %q was killed by signal %d (%s)%s", s.display, int(ws.Signal()), ws.Signal(), stderrSuffix(stderr)), exitErr)
		}
		return newRunError(fmt.Sprintf("shell command %q exited with status %d%s", s.display, exitErr.ExitCode(), stderrSuffix(stderr)), exitErr)
	}
	if waitErr != nil {
		return newRunError(fmt.Sprintf("shell command %q: %v", s.display, waitErr), waitErr)
	}
	if errors.Is(readErr, os.ErrDeadlineExceeded) {
		// Exited 0, but standard output stayed open: a process that left the process group holds it.
		return newRunError(fmt.Sprintf("shell command %q exited but its standard output was not closed within %s (held by a process outside its process group?)", s.display, pipeGrace), readErr)
	}
	return newRunError(fmt.Sprintf("shell command %q: reading standard output: %v", s.display, readErr), readErr)
}

// startError explains a command that could not be started, naming the entrypoint.
func (s *Shell) startError(err error) error {
	reason := err
	var ee *exec.Error
	var pe *fs.PathError
	if errors.As(reason, &ee) {
		reason = ee.Err
	}
	if errors.As(reason, &pe) {
		reason = pe.Err
	}
	return newRunError(fmt.Sprintf("shell command %q: cannot start entrypoint %q: %v", s.display, s.argv0, reason), err)
}

// stderrSuffix renders ": <excerpt>" of standard error, or "" when there was none.
func stderrSuffix(c *capBuffer) string {
	head, gap, tail := c.parts()
	if e := excerpt(head, gap, tail, excerptBytes); e != "" {
		return ": " + e
	}
	return ""
}

// readAllInto copies r to w until EOF or an error (a read deadline once the command is
// done). What was read before an error is kept: standard error is only quoted.
func readAllInto(w *capBuffer, r *os.File) {
	var buf [4096]byte
	for {
		k, err := r.Read(buf[:])
		if k > 0 {
			_, _ = w.Write(buf[:k])
		}
		if err != nil {
			return
		}
	}
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// shellJoin renders argv as a shell would need it typed, for messages only.
func shellJoin(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && strings.IndexFunc(a, needsQuote) < 0 {
			b.WriteString(a)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(a, "'", `'\''`))
		b.WriteByte('\'')
	}
	return clip.String(b.String(), maxCommandDisplay)
}

func needsQuote(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return false
	}
	return !strings.ContainsRune("_@%+=:,./-", r)
}
