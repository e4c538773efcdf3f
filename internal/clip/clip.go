// Package clip shortens user-supplied text for error messages, logs, events and status
// fields: to a byte budget (what Kubernetes fields limit), cut on a rune boundary so no
// UTF-8 sequence is split, with a mark where it cut.
package clip

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Ellipsis marks a cut.
const Ellipsis = "…"

// String returns s if it is at most n bytes long, else as many whole runes of its start
// as fit in n bytes together with Ellipsis. Invalid UTF-8 is replaced by U+FFFD.
func String(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	return Head(s, n-len(Ellipsis)) + Ellipsis
}

// Quote quotes at most n bytes of b, Go-style, saying how long b was when it is cut.
func Quote(b []byte, n int) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if len(s) <= n {
		return strconv.Quote(s)
	}
	return strconv.Quote(Head(s, n)) + fmt.Sprintf("%s (%d bytes in all)", Ellipsis, len(b))
}

// Head is the longest start of s that is at most n bytes and ends on a rune boundary.
func Head[T ~string | ~[]byte](s T, n int) T {
	if n <= 0 {
		return s[:0]
	}
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Tail is the longest end of s that is at most n bytes and starts on a rune boundary.
func Tail[T ~string | ~[]byte](s T, n int) T {
	if n <= 0 {
		return s[len(s):]
	}
	i := max(0, len(s)-n)
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return s[i:]
}
