package trace

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Printable returns s made safe for a terminal: control characters (C0,
// DEL, C1), Unicode line and paragraph separators, bidirectional
// formatting characters and invalid UTF-8 become visible escapes (\x1b,
// \u202e), and a backslash becomes \\ so that an escape in the output
// always means one in the input. Every human-readable output of names and
// symlink targets a guest chose goes through it: such a name may carry
// ESC, BEL, CR or an OSC 52 clipboard write. JSON trace files keep the
// exact bytes. s is returned unchanged (no allocation) when it is clean.
func Printable(s string) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '\\' {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if c >= utf8.RuneSelf && !unsafeRune(r, size) {
			i += size
			continue
		}
		return escapeFrom(s, i)
	}
	return s
}

// escapeFrom escapes s from byte i on; s[:i] is clean.
func escapeFrom(s string, i int) string {
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
			i++
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
			i++
		case c < utf8.RuneSelf:
			b.WriteString(hexByte(c))
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				b.WriteString(hexByte(c))
			case unsafeRune(r, size):
				b.WriteString(`\u`)
				b.WriteString(leftPad(strconv.FormatUint(uint64(r), 16), 4))
			default:
				b.WriteString(s[i : i+size])
			}
			i += size
		}
	}
	return b.String()
}

// unsafeRune reports whether the rune decoded from size bytes must not
// reach a terminal as is.
func unsafeRune(r rune, size int) bool {
	switch {
	case r == utf8.RuneError && size == 1: // invalid UTF-8
		return true
	case r >= 0x80 && r <= 0x9f: // C1 controls (0x9b is a CSI on some terminals)
		return true
	case r == 0x2028 || r == 0x2029: // line and paragraph separators
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true // bidirectional formatting: reorders what follows
	}
	return false
}

func hexByte(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{'\\', 'x', digits[c>>4], digits[c&15]})
}

func leftPad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return strings.Repeat("0", n-len(s)) + s
}
