package token

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

const secret = "s3cr3t-token-value"

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func noSecret(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("the error shows the token: %v", err)
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		tok, want string
	}{
		{"abc.def-ghi", ""},
		{"", "is empty"},
		{"  \n", "is empty"},
		{"a\nb", "spans several lines"},
		{"a\rb", "spans several lines"},
		{"a\x00b", "spans several lines"},
		{" abc", "has leading or trailing white space"},
	} {
		err := Check(tc.tok)
		if got := errString(err); got != tc.want {
			t.Errorf("Check(%q) = %q, want %q", tc.tok, got, tc.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestStatic(t *testing.T) {
	tok, err := Static(secret).Token()
	if err != nil || tok != secret {
		t.Fatalf("Token() = %q, %v", tok, err)
	}
	if _, err := Static("").Token(); err == nil || err.Error() != "the token is empty" {
		t.Errorf("empty: %v", err)
	}
	_, err = Static(secret + "\n" + secret).Token()
	if err == nil {
		t.Fatal("a token with a line break: no error")
	}
	noSecret(t, err)
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, want, wantErr string
	}{
		{"plain", secret, secret, ""},
		{"newline", secret + "\n", secret, ""},
		{"crlf", "  " + secret + "\r\n", secret, ""},
		{"empty", "", "", "is empty"},
		{"blank", " \n\t", "", "is empty"},
		{"two lines", secret + "\n" + secret + "\n", "", "spans several lines"},
		{"too large", strings.Repeat("x", MaxBytes+1), "", "larger than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			write(t, p, tc.content)
			got, err := Read(p)
			noSecret(t, err)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), p) {
					t.Fatalf("Read = %q, %v; want an error naming %s with %q", got, err, p, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Read = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := Read(filepath.Join(dir, "missing")); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

func TestFileRereadsWhenChanged(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "zmon-token-secret")
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f := NewFile(p, clk)
	if f.Path() != p {
		t.Errorf("Path() = %q", f.Path())
	}

	if _, err := f.Token(); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("missing file: %v", err)
	}

	write(t, p, "first\n")
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	expect := func(want string) {
		t.Helper()
		got, err := f.Token()
		if err != nil || got != want {
			t.Fatalf("Token() = %q, %v; want %q", got, err, want)
		}
	}
	expect("first")

	// Same size and modification time: the cached token, until MaxAge has passed.
	write(t, p, "other\n")
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	expect("first")
	clk.SetTime(clk.Now().Add(MaxAge))
	expect("other")

	// A new modification time: read at once.
	write(t, p, "third\n")
	later := mtime.Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	expect("third")

	// A new size, same modification time: read at once.
	write(t, p, "fourth-token\n")
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	expect("fourth-token")

	// Emptied: an error, not the last good token.
	write(t, p, "")
	if _, err := f.Token(); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("emptied file: %v", err)
	}
	// Removed: an error too.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Token(); err == nil {
		t.Fatal("removed file: no error")
	}
	write(t, p, "back\n")
	expect("back")
}

func TestFileConcurrent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tok")
	write(t, p, secret)
	f := NewFile(p, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if tok, err := f.Token(); err != nil || tok != secret {
					t.Errorf("Token() = %q, %v", tok, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestBearer(t *testing.T) {
	var (
		mu   sync.Mutex
		seen = map[string]string{} // host → Authorization
	)
	handler := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Host] = r.Header.Get("Authorization")
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}
	own := httptest.NewServer(http.HandlerFunc(handler))
	defer own.Close()
	other := httptest.NewServer(http.HandlerFunc(handler))
	defer other.Close()

	ownURL, _ := url.Parse(own.URL)
	otherURL, _ := url.Parse(other.URL)
	client := &http.Client{Transport: NewBearer(nil, Static(secret), ownURL)}
	for _, u := range []string{own.URL + "/x", other.URL + "/y"} {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if got := seen[ownURL.Host]; got != "Bearer "+secret {
		t.Errorf("own host got Authorization %q", got)
	}
	if got := seen[otherURL.Host]; got != "" {
		t.Errorf("another host got Authorization %q", got)
	}
}

func TestBearerTokenError(t *testing.T) {
	called := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	missing := filepath.Join(t.TempDir(), "missing")
	client := &http.Client{Transport: NewBearer(srv.Client().Transport, NewFile(missing, nil), u)}
	resp, err := client.Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err == nil {
		resp.Body.Close()
		t.Fatal("no error without a token")
	}
	if !strings.Contains(err.Error(), "token file") {
		t.Errorf("error %v does not say the token file is at fault", err)
	}
	if called {
		t.Error("the request was sent without its token")
	}
}
