package clip

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"0123456789abc", 10, "0123456…"},
		{"ééééé", 7, "éé…"}, // 2-byte runes: 4 bytes of them fit before the 3-byte mark
		{"日本語のテキスト", 9, "日本…"},
		{"bad\xffbyte", 100, "bad\uFFFDbyte"},
		{"anything", 0, "…"},
	}
	for _, tt := range tests {
		got := String(tt.in, tt.n)
		if got != tt.want {
			t.Errorf("String(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("String(%q, %d) = %q is not valid UTF-8", tt.in, tt.n, got)
		}
	}
}

func TestQuote(t *testing.T) {
	if got := Quote([]byte("abc"), 10); got != `"abc"` {
		t.Errorf("Quote short = %s", got)
	}
	got := Quote([]byte(strings.Repeat("é", 100)), 5)
	if got != `"éé"… (200 bytes in all)` {
		t.Errorf("Quote long = %s", got)
	}
}

func FuzzString(f *testing.F) {
	f.Add("héllo wörld", 5)
	f.Add("\xff\xfe", 1)
	f.Fuzz(func(t *testing.T, s string, n int) {
		n = n % 4096
		got := String(s, n)
		if !utf8.ValidString(got) {
			t.Fatalf("String(%q, %d) = %q: invalid UTF-8", s, n, got)
		}
		if n >= len(Ellipsis) && len(got) > n {
			t.Fatalf("String(%q, %d) = %q: %d bytes", s, n, got, len(got))
		}
	})
}

func TestHeadTail(t *testing.T) {
	s := "aé日b" // 1 + 2 + 3 + 1 bytes
	for n, want := range []string{"", "a", "a", "aé", "aé", "aé", "aé日", "aé日b", "aé日b"} {
		if got := Head(s, n); got != want {
			t.Errorf("Head(%q, %d) = %q, want %q", s, n, got, want)
		}
	}
	for n, want := range []string{"", "b", "b", "b", "日b", "日b", "é日b", "aé日b", "aé日b"} {
		if got := string(Tail([]byte(s), n)); got != want {
			t.Errorf("Tail(%q, %d) = %q, want %q", s, n, got, want)
		}
	}
}
