package execute

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/custompodautoscaler/cpa/internal/config"
)

func slogDebug(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		m       *config.Method
		wantErr string
		check   func(Runner) bool
	}{
		{"shell", shMethod(1000, "echo 1"), "", func(r Runner) bool { _, ok := r.(*Shell); return ok }},
		{"http", httpMethod(1000, config.HTTP{URL: "http://127.0.0.1:1/x"}), "", func(r Runner) bool { _, ok := r.(*HTTP); return ok }},
		{"unknown type", &config.Method{Type: "grpc", Timeout: 1}, `invalid configuration: method.type = "grpc": must be shell or http`, nil},
		{"empty type", &config.Method{Timeout: 1}, `invalid configuration: method.type: required: shell or http`, nil},
		{"nil", nil, "invalid configuration: method: required: a method with type shell or http", nil},
		{"shell type without block", &config.Method{Type: config.MethodShell, Timeout: 1, HTTP: &config.HTTP{}}, "invalid configuration: method.shell: required for type shell", nil},
		{"no timeout (config.Load defaults it)", &config.Method{Type: config.MethodShell, Shell: &config.Shell{Entrypoint: "/bin/sh", Command: []string{"-c", "true"}}},
			"invalid configuration: method.timeout = 0: must be a positive number of milliseconds (leave it out for the default, 5000)", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.m, Options{})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(r) {
				t.Fatalf("New = %T, %v", r, err)
			}
		})
	}
	out, err := func() ([]byte, error) {
		r, err := New(shMethod(5000, "cat"), Options{})
		if err != nil {
			return nil, err
		}
		return r.Run(context.Background(), []byte("in"))
	}()
	if err != nil || string(out) != "in" {
		t.Fatalf("Run = %q, %v", out, err)
	}
}

func TestReadCapped(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		max      int
		want     string
		wantOver bool
	}{
		{"empty", "", 10, "", false},
		{"under", "abc", 10, "abc", false},
		{"exact", "0123456789", 10, "0123456789", false},
		{"over", "0123456789x", 10, "0123456789", true},
		{"large exact", strings.Repeat("z", 100_000), 100_000, strings.Repeat("z", 100_000), false},
		{"large over", strings.Repeat("z", 100_001), 100_000, strings.Repeat("z", 100_000), true},
	}
	for _, tt := range tests {
		for _, slow := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tt.in)
			if slow {
				r = iotest.OneByteReader(r)
			}
			got, over, err := readCapped(r, tt.max)
			if err != nil || string(got) != tt.want || over != tt.wantOver {
				t.Errorf("%s (one byte reads %v): got %d bytes, over %v, err %v", tt.name, slow, len(got), over, err)
			}
		}
	}
	if _, _, err := readCapped(iotest.ErrReader(io.ErrUnexpectedEOF), 10); err != io.ErrUnexpectedEOF {
		t.Errorf("error %v", err)
	}
}

func TestCapBuffer(t *testing.T) {
	for _, chunk := range []int{1, 7, 4096, stderrTailBytes, stderrTailBytes + 3, 200_000} {
		var c capBuffer
		var all bytes.Buffer
		for i := 0; all.Len() < 200_000; i++ {
			p := bytes.Repeat([]byte{byte('a' + i%26)}, chunk)
			if all.Len()+len(p) > 200_000 {
				p = p[:200_000-all.Len()]
			}
			all.Write(p)
			c.Write(p)
		}
		head, gap, tail := c.parts()
		full := all.Bytes()
		if !bytes.Equal(head, full[:stderrHeadBytes]) || !bytes.Equal(tail, full[len(full)-stderrTailBytes:]) || gap != int64(len(full)-stderrHeadBytes-stderrTailBytes) {
			t.Errorf("chunk %d: head/tail differ from the stream, gap %d", chunk, gap)
		}
	}
	var c capBuffer
	c.Write([]byte("short"))
	if c.String() != "short" {
		t.Errorf("String() = %q", c.String())
	}
}

func TestExcerpt(t *testing.T) {
	tests := []struct {
		name string
		head string
		gap  int64
		tail string
		n    int
		want string
	}{
		{"short trimmed", "  hello\n", 0, "", 10, "hello"},
		{"head and tail joined", "ab", 0, "cd", 10, "abcd"},
		{"exactly 2n", "0123456789", 0, "", 5, "0123456789"},
		{"cut", "0123456789abc", 0, "", 5, "01234 … [3 bytes omitted] … 89abc"},
		{"with gap", "0123456789", 100, "abcdefghij", 3, "012 … [114 bytes omitted] … hij"},
		{"utf8 boundary", strings.Repeat("é", 10), 0, "", 5, "éé … [12 bytes omitted] … éé"},
		{"invalid utf8", "a\xffb", 0, "", 10, "a\uFFFDb"},
	}
	for _, tt := range tests {
		got := excerpt([]byte(tt.head), tt.gap, []byte(tt.tail), tt.n)
		if got != tt.want {
			t.Errorf("%s: excerpt = %q, want %q", tt.name, got, tt.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("%s: invalid UTF-8", tt.name)
		}
	}
}
