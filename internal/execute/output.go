package execute

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"

	"github.com/custompodautoscaler/cpa/internal/clip"
)

// excerptBytes is how much of the start and of the end of standard error or a response
// body an error message quotes.
const excerptBytes = 1024

// readCapped reads r to EOF, keeping at most max bytes. over reports that r had more;
// the reading then stops early and the bytes returned are the first max.
func readCapped(r io.Reader, max int) (b []byte, over bool, err error) {
	limit := max + 1 // one more byte tells "exactly max" from "more than max"
	b = make([]byte, 0, min(512, limit))
	for {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(cap(b), limit-len(b)))
		}
		n, rerr := r.Read(b[len(b):min(cap(b), limit)])
		b = b[:len(b)+n]
		if len(b) > max {
			return b[:max], true, nil
		}
		if rerr == io.EOF {
			return b, false, nil
		}
		if rerr != nil {
			return b, false, rerr
		}
	}
}

// Bounds of what a capBuffer keeps of standard error.
const (
	stderrHeadBytes = 32 << 10
	stderrTailBytes = 32 << 10
)

// capBuffer is an io.Writer that keeps the first stderrHeadBytes and the last
// stderrTailBytes written to it, and counts the rest.
type capBuffer struct {
	head  []byte
	tail  []byte // a ring once full: the oldest byte is at pos
	pos   int
	full  bool
	total int64
}

func (c *capBuffer) Write(p []byte) (int, error) {
	n := len(p)
	c.total += int64(n)
	if room := stderrHeadBytes - len(c.head); room > 0 {
		k := min(room, len(p))
		c.head = append(c.head, p[:k]...)
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	if len(p) >= stderrTailBytes {
		c.tail = append(c.tail[:0], p[len(p)-stderrTailBytes:]...)
		c.pos, c.full = 0, true
		return n, nil
	}
	if !c.full {
		k := min(stderrTailBytes-len(c.tail), len(p))
		c.tail = append(c.tail, p[:k]...)
		p = p[k:]
		if len(c.tail) < stderrTailBytes {
			return n, nil
		}
		c.pos, c.full = 0, true
	}
	for len(p) > 0 {
		k := copy(c.tail[c.pos:], p)
		p = p[k:]
		c.pos = (c.pos + k) % stderrTailBytes
	}
	return n, nil
}

// parts returns the kept start, the number of bytes dropped in the middle, and the kept end.
func (c *capBuffer) parts() (head []byte, gap int64, tail []byte) {
	tail = c.tail
	if c.full && c.pos != 0 {
		tail = make([]byte, 0, len(c.tail))
		tail = append(append(tail, c.tail[c.pos:]...), c.tail[:c.pos]...)
	}
	return c.head, c.total - int64(len(c.head)+len(tail)), tail
}

// String returns everything kept, with a marker where bytes were dropped, as valid UTF-8.
func (c *capBuffer) String() string {
	head, gap, tail := c.parts()
	if gap == 0 {
		return strings.ToValidUTF8(string(head)+string(tail), "\uFFFD")
	}
	return strings.ToValidUTF8(fmt.Sprintf("%s\n… [%d bytes omitted] …\n%s", head, gap, tail), "\uFFFD")
}

// excerpt returns a short, trimmed, valid UTF-8 quote of the stream head ++ [gap bytes
// not kept] ++ tail: all of it when short, else its first and last n bytes around a marker.
func excerpt(head []byte, gap int64, tail []byte, n int) string {
	if gap == 0 {
		b := head
		if len(tail) > 0 {
			b = append(head[:len(head):len(head)], tail...)
		}
		if len(b) <= 2*n {
			return clean(strings.TrimSpace(string(b)))
		}
		head, tail = b, b
	}
	total := int64(len(head)) + gap + int64(len(tail))
	if gap == 0 {
		total = int64(len(head))
	}
	head, tail = clip.Head(head, n), clip.Tail(tail, n)
	gap = total - int64(len(head)) - int64(len(tail))
	return fmt.Sprintf("%s … [%d bytes omitted] … %s",
		clean(strings.TrimLeftFunc(string(head), unicode.IsSpace)), gap,
		clean(strings.TrimRightFunc(string(tail), unicode.IsSpace)))
}

func clean(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
