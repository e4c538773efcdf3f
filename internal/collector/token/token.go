// Package token gives collectors a bearer token to send: a static one (a flag's value) or
// one read from a file that is read again when it changes, so a rotated token (a mounted
// secret, a Platform IAM credentials directory) is picked up without a restart.
//
// Nothing here puts a token in an error or a log line: errors name the file and say what
// is wrong with its content, never the content.
package token

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// MaxAge is how long a token read from a file is used before the file is read again even
// though its modification time and size did not change (a rewrite within the file
// system's timestamp granularity keeps both).
const MaxAge = time.Minute

// MaxBytes caps a token file: tokens are a few KiB at most.
const MaxBytes = 1 << 20

// Source gives the token to send now.
type Source interface {
	Token() (string, error)
}

// Static is a Source that always gives the same token.
type Static string

// Token returns s, or an error when s is not a usable token (see Check).
func (s Static) Token() (string, error) {
	if err := Check(string(s)); err != nil {
		return "", fmt.Errorf("the token %w", err)
	}
	return string(s), nil
}

// Check says why tok cannot be sent as a bearer token: it is empty, or holds a line
// break or a NUL (which would corrupt the header). The error does not quote tok; it reads
// well after "the token " or "token file X: ".
func Check(tok string) error {
	switch {
	case strings.TrimSpace(tok) == "":
		return errors.New("is empty")
	case strings.ContainsAny(tok, "\r\n\x00"):
		return errors.New("spans several lines")
	case strings.TrimSpace(tok) != tok:
		return errors.New("has leading or trailing white space")
	}
	return nil
}

// Read reads the token in the file at path: its content with surrounding white space
// (a trailing newline) removed. An empty file, one larger than MaxBytes and one whose
// token spans several lines are errors.
func Read(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	if len(b) > MaxBytes {
		return "", fmt.Errorf("token file %s: larger than %d bytes", path, MaxBytes)
	}
	tok := strings.TrimSpace(string(b))
	if err := Check(tok); err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	return tok, nil
}

// File is a Source reading its token from a file: at the first Token call, then again
// whenever the file's modification time or size changes, or MaxAge after it was last
// read. A file that is missing or unusable is an error at each call until it is fixed
// (the last good token is not served in its place: a deleted secret is meant to stop the
// requests). It is safe for concurrent use.
type File struct {
	path  string
	clock clock.PassiveClock

	mu      sync.Mutex
	token   string
	modTime time.Time
	size    int64
	readAt  time.Time
}

// NewFile returns a File reading path; a nil clk means the real clock. The file is not
// read yet.
func NewFile(path string, clk clock.PassiveClock) *File {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &File{path: path, clock: clk}
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Token returns the file's token, reading the file again if it changed.
func (f *File) Token() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if err != nil {
		f.token = ""
		return "", fmt.Errorf("token file: %w", err)
	}
	if f.token != "" && fi.ModTime().Equal(f.modTime) && fi.Size() == f.size && f.clock.Since(f.readAt) < MaxAge {
		return f.token, nil
	}
	tok, err := Read(f.path)
	if err != nil {
		f.token = ""
		return "", err
	}
	f.token, f.modTime, f.size, f.readAt = tok, fi.ModTime(), fi.Size(), f.clock.Now()
	return tok, nil
}

// Bearer is an http.RoundTripper adding "Authorization: Bearer <token>" to the requests
// for one scheme and host only: a request elsewhere (a redirect to another host, or
// from https to http) goes out without it.
type Bearer struct {
	base   http.RoundTripper
	source Source
	scheme string
	host   string
}

// NewBearer returns a Bearer sending source's token to target's scheme and host through
// base (nil: http.DefaultTransport).
func NewBearer(base http.RoundTripper, source Source, target *url.URL) *Bearer {
	if base == nil {
		base = http.DefaultTransport
	}
	return &Bearer{base: base, source: source, scheme: target.Scheme, host: target.Host}
}

// RoundTrip implements http.RoundTripper. When the token cannot be had, the request is
// not sent and the error says why.
func (b *Bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != b.scheme || req.URL.Host != b.host {
		return b.base.RoundTrip(req)
	}
	tok, err := b.source.Token()
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return b.base.RoundTrip(r)
}
