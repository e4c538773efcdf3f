package execute

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custompodautoscaler/cpa/internal/config"
)

// hangBound tells a call that was cut short (killed, timed out, given up on) from one
// that waited for its scripts' 100 s sleeps, or a process still running from one on its
// way out: far above any scheduling delay on a loaded machine, far below 100 s. Tests
// wait for conditions up to it rather than asserting how fast things happen.
const hangBound = 30 * time.Second

// skipUnlessCI skips a test that needs a tool this machine lacks, and fails it on CI
// (CI=true), where every tool must be present.
func skipUnlessCI(t testing.TB, tool string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("needs %s, missing on CI: %v", tool, err)
	}
	t.Skipf("needs %s: %v", tool, err)
}

// shMethod is a shell method running script with /bin/sh -c.
func shMethod(timeoutMs int, script string) *config.Method {
	return &config.Method{
		Type:    config.MethodShell,
		Timeout: timeoutMs,
		Shell:   &config.Shell{Entrypoint: "/bin/sh", Command: []string{"-c", script}},
	}
}

// withDefaults applies the defaults config.Load applies to empty fields.
func withDefaults(m *config.Method) *config.Method {
	m.SetDefaults()
	return m
}

func newShell(t testing.TB, m *config.Method, opts Options) *Shell {
	t.Helper()
	s, err := NewShell(m, opts)
	if err != nil {
		t.Fatalf("NewShell: %v", err)
	}
	return s
}

// writeScript writes an executable script into a temporary directory and returns its path.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShellRun(t *testing.T) {
	script := writeScript(t, `echo "from script: $1"`)
	t.Setenv("CPA_EXECUTE_TEST_VAR", "inherited value")
	binary := []byte("{\"a\":1}\x00\xff\n\n")
	tests := []struct {
		name   string
		method *config.Method
		input  []byte
		want   string
	}{
		{"trailing newline kept", shMethod(5000, "echo 5"), nil, "5\n"},
		{"stdin received exactly", shMethod(5000, "cat"), []byte(`{"resource":{"name":"x"},"runType":"scaler"}`), `{"resource":{"name":"x"},"runType":"scaler"}`},
		{"binary stdin", shMethod(5000, "cat"), binary, string(binary)},
		{"empty input", shMethod(5000, "wc -c | tr -d ' '"), nil, "0\n"},
		{"environment inherited", shMethod(5000, `printf %s "$CPA_EXECUTE_TEST_VAR"`), nil, "inherited value"},
		{"no shell unless the entrypoint is one", &config.Method{Type: config.MethodShell, Timeout: 5000,
			Shell: &config.Shell{Entrypoint: "echo", Command: []string{"$HOME", "a  b"}}}, nil, "$HOME a  b\n"},
		{"script entrypoint with args", &config.Method{Type: config.MethodShell, Timeout: 5000,
			Shell: &config.Shell{Entrypoint: script, Command: []string{"x y"}}}, nil, "from script: x y\n"},
		{"empty entrypoint is /bin/sh (config's default)", withDefaults(&config.Method{Type: config.MethodShell, Timeout: 5000,
			Shell: &config.Shell{Command: []string{"-c", "echo default"}}}), nil, "default\n"},
		{"output at the cap", shMethod(5000, "printf 0123456789"), nil, "0123456789"},
		{"stderr does not mix into stdout", shMethod(5000, "echo out; echo err >&2"), nil, "out\n"},
		{"input not read, exit 0", shMethod(5000, "echo early"), bytes.Repeat([]byte("x"), 1<<20), "early\n"},
		{"1 MiB input read", shMethod(5000, "wc -c | tr -d ' '"), bytes.Repeat([]byte("x"), 1<<20), "1048576\n"},
		{"background process does not hold the call", shMethod(5000, "sleep 100 & echo done"), nil, "done\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newShell(t, tt.method, Options{MaxOutputBytes: 10 << 20})
			if tt.name == "output at the cap" {
				s = newShell(t, tt.method, Options{MaxOutputBytes: 10})
			}
			start := time.Now()
			got, err := s.Run(context.Background(), tt.input)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("output = %q, want %q", got, tt.want)
			}
			if d := time.Since(start); d > hangBound {
				t.Errorf("Run took %s", d)
			}
		})
	}
}

func TestShellLargeOutputRoundTrip(t *testing.T) {
	in := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	s := newShell(t, shMethod(10000, "cat"), Options{})
	got, err := s.Run(context.Background(), in)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !bytes.Equal(got, in) {
		t.Fatalf("output differs from input: %d bytes, want %d", len(got), len(in))
	}
}

func TestShellErrors(t *testing.T) {
	tests := []struct {
		name    string
		method  *config.Method
		opts    Options
		input   []byte
		want    string // the whole message, unless prefix is set
		prefix  bool
		is      error
		maxTime time.Duration
	}{
		{
			name:   "exit status with stderr",
			method: &config.Method{Type: config.MethodShell, Timeout: 5000, Shell: &config.Shell{Entrypoint: "/bin/sh", Command: []string{"-c", "echo \"No 'numPods' label on resource being managed\" >&2; exit 1"}}},
			want:   `shell command "/bin/sh -c 'echo \"No '\\''numPods'\\'' label on resource being managed\" >&2; exit 1'" exited with status 1: No 'numPods' label on resource being managed`,
		},
		{
			name:   "exit status without stderr",
			method: shMethod(5000, "exit 3"),
			want:   `shell command "/bin/sh -c 'exit 3'" exited with status 3`,
		},
		{
			name:   "exit status kept when the input is not read",
			method: shMethod(5000, "echo oops >&2; exit 4"),
			input:  bytes.Repeat([]byte("x"), 1<<20),
			want:   `shell command "/bin/sh -c 'echo oops >&2; exit 4'" exited with status 4: oops`,
		},
		{
			name:   "killed by a signal",
			method: shMethod(5000, "kill -TERM $$"),
			want:   `shell command "/bin/sh -c 'kill -TERM $$'" was killed by signal 15 (terminated)`,
		},
		{
			name: "timeout",
			// Long enough for the shell to print before the timeout even on a loaded machine.
			method:  shMethod(2000, "echo partial >&2; sleep 100"),
			want:    `shell command "/bin/sh -c 'echo partial >&2; sleep 100'" timed out after 2s (process group killed): partial`,
			is:      ErrTimeout,
			maxTime: hangBound,
		},
		{
			name:    "timeout with grandchildren holding the pipes",
			method:  shMethod(200, "sleep 100 & sleep 100"),
			want:    `shell command "/bin/sh -c 'sleep 100 & sleep 100'" timed out after 200ms (process group killed)`,
			is:      ErrTimeout,
			maxTime: hangBound,
		},
		{
			name:   "output over the cap",
			method: shMethod(5000, "printf 01234567890"),
			opts:   Options{MaxOutputBytes: 10},
			want:   `shell command "/bin/sh -c 'printf 01234567890'": output exceeds 10 bytes (process group killed)`,
			is:     ErrOutputTooLarge,
		},
		{
			name:    "endless output over the cap",
			method:  shMethod(5000, "yes"),
			opts:    Options{MaxOutputBytes: 1000},
			want:    `shell command "/bin/sh -c yes": output exceeds 1000 bytes (process group killed)`,
			is:      ErrOutputTooLarge,
			maxTime: hangBound,
		},
		{
			name:   "entrypoint not found",
			method: &config.Method{Type: config.MethodShell, Timeout: 5000, Shell: &config.Shell{Entrypoint: "cpa-no-such-binary", Command: []string{"/metric.py"}}},
			want:   `shell command "cpa-no-such-binary /metric.py": cannot start entrypoint "cpa-no-such-binary": executable file not found in $PATH`,
		},
		{
			name:   "entrypoint path not found",
			method: &config.Method{Type: config.MethodShell, Timeout: 5000, Shell: &config.Shell{Entrypoint: "/nonexistent/python"}},
			want:   `shell command "/nonexistent/python": cannot start entrypoint "/nonexistent/python": no such file or directory`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newShell(t, tt.method, tt.opts)
			start := time.Now()
			out, err := s.Run(context.Background(), tt.input)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatalf("Run returned %q and no error", out)
			}
			if out != nil {
				t.Errorf("Run returned output %q with an error", out)
			}
			if tt.prefix {
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %q does not contain %q", err, tt.want)
				}
			} else if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v) = false", tt.is)
			}
			if tt.maxTime > 0 && elapsed > tt.maxTime {
				t.Errorf("Run took %s", elapsed)
			}
			if len(err.Error()) > 3000 {
				t.Errorf("error message is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestShellLongStderrExcerpt(t *testing.T) {
	s := newShell(t, shMethod(5000, `echo "first line" >&2; head -c 100000 /dev/zero | tr '\0' e >&2; echo "last line" >&2; exit 2`), Options{})
	_, err := s.Run(context.Background(), nil)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"exited with status 2: first line", "bytes omitted", "last line"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %.200q… does not contain %q", msg, want)
		}
	}
	if len(msg) > 2*excerptBytes+200 {
		t.Errorf("error message is %d bytes long", len(msg))
	}
}

func TestShellExitError(t *testing.T) {
	s := newShell(t, shMethod(5000, "exit 7"), Options{})
	_, err := s.Run(context.Background(), nil)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("errors.As(*exec.ExitError) on %v: exit code %v", err, ee)
	}
}

// pidsFrom reads the process ids a test script wrote, one a line.
func pidsFrom(t *testing.T, path string) []int {
	t.Helper()
	var pids []int
	deadline := time.Now().Add(hangBound)
	for {
		b, _ := os.ReadFile(path)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		if len(pids) >= 2 || time.Now().After(deadline) {
			return pids
		}
		pids = nil
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func assertDead(t *testing.T, pids []int) {
	t.Helper()
	if len(pids) < 2 {
		t.Fatalf("script reported pids %v, want 2", pids)
	}
	deadline := time.Now().Add(hangBound)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Errorf("process %d still running", pid)
				syscallKill(pid)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func syscallKill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

// TestShellKillsProcessGroup checks that the child and its background grandchild are
// gone after a timeout, a cancellation and a normal exit.
func TestShellKillsProcessGroup(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		skipUnlessCI(t, "/proc", err)
	}
	tests := []struct {
		name    string
		timeout int
		cancel  bool
		script  string
		wantErr error
	}{
		// The timeout leaves the script ample time to write its pids before it is killed.
		{"timeout", 2000, false, `sleep 100 & echo $! >> "$PIDS"; echo $$ >> "$PIDS"; sleep 100`, ErrTimeout},
		{"cancel", 60000, true, `sleep 100 & echo $! >> "$PIDS"; echo $$ >> "$PIDS"; sleep 100`, context.Canceled},
		// Exits once both background processes have written their pids, not after a guess.
		{"exit leaves a background process", 60000, false, `sleep 100 & echo $! >> "$PIDS"; sh -c 'echo $$ >> "$PIDS"; sleep 100' & while [ "$(wc -l < "$PIDS")" -lt 2 ]; do sleep 0.01; done; echo ok`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pids")
			t.Setenv("PIDS", pidFile)
			s := newShell(t, shMethod(tt.timeout, tt.script), Options{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				go func() {
					pidsFrom(t, pidFile)
					cancel()
				}()
			}
			start := time.Now()
			_, err := s.Run(ctx, nil)
			if d := time.Since(start); d > hangBound {
				t.Errorf("Run took %s", d)
			}
			if tt.wantErr == nil && err != nil {
				t.Errorf("Run: %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Run error %v, want %v", err, tt.wantErr)
			}
			if tt.cancel && err != nil && !strings.Contains(err.Error(), "interrupted (process group killed): context canceled") {
				t.Errorf("error %q", err)
			}
			assertDead(t, pidsFrom(t, pidFile))
		})
	}
}

// TestShellEscapedProcess checks that a process that left the process group (setsid) and
// holds standard output open delays Run by no more than pipeGrace.
func TestShellEscapedProcess(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		skipUnlessCI(t, "setsid", err)
	}
	pidFile := filepath.Join(t.TempDir(), "pids")
	t.Setenv("PIDS", pidFile)
	// The command exits once the escaped process has left the group (it writes its pid
	// after setsid), not after a guessed delay.
	s := newShell(t, shMethod(60000, `setsid sh -c 'echo $$ > "$PIDS"; exec sleep 100' & while [ ! -s "$PIDS" ]; do sleep 0.01; done; echo ok`), Options{})
	start := time.Now()
	_, err := s.Run(context.Background(), nil)
	elapsed := time.Since(start)
	t.Cleanup(func() {
		b, _ := os.ReadFile(pidFile)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			syscallKill(pid)
		}
	})
	// The message says Run gave up after pipeGrace; the bound only tells that from
	// waiting for the 100 s sleep.
	if elapsed > hangBound {
		t.Errorf("Run took %s", elapsed)
	}
	want := "exited but its standard output was not closed within 250ms"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want it to contain %q", err, want)
	}
}

func TestShellCanceledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := newShell(t, shMethod(5000, "echo 1"), Options{})
	_, err := s.Run(ctx, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestShellLogs(t *testing.T) {
	tests := []struct {
		name      string
		logStderr bool
		script    string
		want      []string
		notWant   []string
	}{
		{"logStderr on success", true, "echo warning-text >&2; echo 1", []string{"level=INFO", "shell command stderr", "warning-text", "level=DEBUG", "shell command finished", "outputBytes=2"}, nil},
		{"logStderr on failure", true, "echo failure-text >&2; exit 1", []string{"level=INFO", "failure-text", "failed=true"}, nil},
		{"stderr not logged by default", false, "echo quiet-text >&2; echo 1", []string{"shell command finished", "stderrBytes=11"}, []string{"level=INFO"}},
		{"no stderr, nothing at info", true, "echo 1", []string{"shell command finished"}, []string{"level=INFO"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			m := shMethod(5000, tt.script)
			m.Shell.LogStderr = tt.logStderr
			s := newShell(t, m, Options{Logger: logger})
			_, _ = s.Run(context.Background(), nil)
			for _, w := range tt.want {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("log %q does not contain %q", buf.String(), w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(buf.String(), w) {
					t.Errorf("log %q contains %q", buf.String(), w)
				}
			}
		})
	}
}

func TestShellConstructionErrors(t *testing.T) {
	tests := []struct {
		name string
		m    *config.Method
		opts Options
		want string
	}{
		{"nil method", nil, Options{}, "invalid configuration: method: required: a method with type shell or http"},
		{"no shell block", &config.Method{Type: config.MethodShell, Timeout: 100}, Options{}, "invalid configuration: method.shell: required for type shell"},
		{"http method", &config.Method{Type: config.MethodHTTP, Timeout: 100, HTTP: &config.HTTP{Method: "GET", URL: "http://x/", SuccessCodes: []int{200}, ParameterMode: "body"}}, Options{}, `method.type is "http", want "shell"`},
		{"negative timeout", shMethod(-1, "true"), Options{}, "invalid configuration: method.timeout = -1: must be a positive number of milliseconds (leave it out for the default, 5000)"},
		{"negative cap", shMethod(100, "true"), Options{MaxOutputBytes: -1}, "maximum output size must not be negative, got -1"},
		{"huge cap", shMethod(100, "true"), Options{MaxOutputBytes: math.MaxInt}, fmt.Sprintf("maximum output size %d is too large (at most 1073741824)", math.MaxInt)},
		{"huge timeout", shMethod(math.MaxInt, "true"), Options{}, fmt.Sprintf("invalid configuration: method.timeout = %d: must be at most 9223372036854 milliseconds (about 292 years)", math.MaxInt)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewShell(tt.m, tt.opts)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestShellNoGoroutineLeak runs calls that end every way and checks that no goroutine
// outlives them.
func TestShellNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	scripts := []struct {
		timeout int
		script  string
		cancel  bool
	}{
		{5000, "echo 1", false},
		{5000, "exit 1", false},
		{100, "sleep 100 & sleep 100", false},
		{5000, "yes", false},
		{60000, "sleep 100", true},
		{5000, "sleep 100 & echo 1", false},
	}
	for _, sc := range scripts {
		s := newShell(t, shMethod(sc.timeout, sc.script), Options{MaxOutputBytes: 100})
		ctx, cancel := context.WithCancel(context.Background())
		if sc.cancel {
			time.AfterFunc(100*time.Millisecond, cancel)
		}
		_, _ = s.Run(ctx, bytes.Repeat([]byte("x"), 200_000))
		cancel()
	}
	waitGoroutines(t, before)
}

func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(hangBound)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestShellConcurrent(t *testing.T) {
	s := newShell(t, shMethod(5000, "cat"), Options{})
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			in := []byte(strconv.Itoa(i))
			out, err := s.Run(context.Background(), in)
			if err == nil && !bytes.Equal(out, in) {
				err = fmt.Errorf("output %q, want %q", out, in)
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestShellJoin(t *testing.T) {
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"python", "/metric.py"}, "python /metric.py"},
		{[]string{"/bin/sh", "-c", "/binary -mode=metric"}, "/bin/sh -c '/binary -mode=metric'"},
		{[]string{"a", ""}, "a ''"},
		{[]string{"it's"}, `'it'\''s'`},
		{[]string{strings.Repeat("x", 300)}, strings.Repeat("x", 256-len("…")) + "…"},
	}
	for _, tt := range tests {
		if got := shellJoin(tt.argv); got != tt.want {
			t.Errorf("shellJoin(%q) = %q, want %q", tt.argv, got, tt.want)
		}
	}
}

// BenchmarkShellRun measures one call of a command that reads its input and prints a
// value, the shape of a per-pod metric call. Compare with BenchmarkRawExec.
func BenchmarkShellRun(b *testing.B) {
	s := newShell(b, shMethod(5000, "cat >/dev/null; echo 1"), Options{})
	input := benchInput()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		out, err := s.Run(ctx, input)
		if err != nil || string(out) != "1\n" {
			b.Fatalf("Run = %q, %v", out, err)
		}
	}
}

// BenchmarkRawExec is the floor BenchmarkShellRun is measured against: the same command
// run with os/exec and nothing else. child-cpu-ns/op is the CPU the child itself used.
func BenchmarkRawExec(b *testing.B) {
	input := benchInput()
	var childCPU time.Duration
	b.ReportAllocs()
	for b.Loop() {
		cmd := exec.Command("/bin/sh", "-c", "cat >/dev/null; echo 1")
		cmd.Stdin = bytes.NewReader(input)
		out, err := cmd.Output()
		if err != nil || string(out) != "1\n" {
			b.Fatalf("Output = %q, %v", out, err)
		}
		childCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	b.ReportMetric(float64(childCPU.Nanoseconds())/float64(b.N), "child-cpu-ns/op")
}

// benchInput is about the size of a per-pod metric input (a Pod's JSON).
func benchInput() []byte {
	return []byte(`{"resource":` + `{"metadata":{"name":"pod-1","namespace":"default","labels":{"app":"x"}},"spec":{"containers":[{"name":"c","image":"i"}]},"status":{"phase":"Running","podIP":"10.0.0.1","x":"` + strings.Repeat("y", 4000) + `"}}` + `,"runType":"scaler"}`)
}
