package trace

import (
	"testing"
	"unicode/utf8"
)

func TestPrintable(t *testing.T) {
	cases := map[string]string{
		"plain.txt":          "plain.txt",
		"ünïcödé 名前":         "ünïcödé 名前",
		"\x1b[2J":            `\x1b[2J`,
		"bell\a":             `bell\x07`,
		"cr\roverwrite":      `cr\x0doverwrite`,
		"\x1b]52;c;aGk=\x07": `\x1b]52;c;aGk=\x07`,
		"nl\nx\ty\x7f":       `nl\x0ax\x09y\x7f`,
		"back\\x1b":          `back\\x1b`,
		"bad\xff\xfeutf8":    `bad\xff\xfeutf8`,
		"c1\u009b31m":        `c1\u009b31m`,
		"rtl\u202egnp.exe":   `rtl\u202egnp.exe`,
		"sep\u2028x":         `sep\u2028x`,
		"truncated\xe2\x82":  `truncated\xe2\x82`,
	}
	for in, want := range cases {
		got := Printable(in)
		if got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Printable(%q) is not valid UTF-8", in)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
				t.Errorf("Printable(%q) kept control %U", in, r)
			}
		}
	}
	clean := "a/clean/path"
	if n := testing.AllocsPerRun(100, func() { _ = Printable(clean) }); n != 0 {
		t.Errorf("clean string: %v allocations, want 0", n)
	}
}
