package rules

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

func TestParseExamples(t *testing.T) {
	for _, tc := range []struct {
		kind  Kind
		text  string
		want  string
		check func(*Rule) bool
	}{
		{Break, "LOOKUP /etc/*", "break LOOKUP /etc/*", func(r *Rule) bool { return r.Ops == 1<<fuse.OpLookup && r.Glob == "/etc/*" }},
		{Break, "READ /init.krun eof", "break READ /init.krun eof", func(r *Rule) bool { return r.EOF }},
		{Break, "OPEN /lib/*.so* nth=3", "break OPEN /lib/*.so* nth=3", func(r *Rule) bool { return r.Nth == 3 }},
		{Fault, "OPEN /etc/passwd ENOENT", "fault OPEN /etc/passwd ENOENT", func(r *Rule) bool { return r.Errno == errnoOf("ENOENT") }},
		{Fault, "READ /init.krun EIO nth=2", "fault READ /init.krun nth=2 EIO", func(r *Rule) bool { return r.Errno == errnoOf("EIO") && r.Nth == 2 }},
		{Fault, "lookup,getattr /lib/** delay=2s p=0.1 seed=7", "fault LOOKUP,GETATTR /lib/** delay=2s p=0.1 seed=7",
			func(r *Rule) bool { return r.Delay == 2*time.Second && r.P == 0.1 && r.Seed == 7 }},
		{Fault, "READ short=10 every=3", "fault READ short=10 every=3", func(r *Rule) bool { return r.Short == 10 && r.Every == 3 }},
		{Break, "* nodeid=1 once", "break * nodeid=1 once", func(r *Rule) bool { return r.Ops == AllOps && r.Nodeid == 1 && r.Once }},
		{Fault, "LOOKUP /etc/* errno=ENOENT EACCES", "fault LOOKUP /etc/* errno=ENOENT EACCES", func(r *Rule) bool { return r.ReplyErrno == errnoOf("ENOENT") }},
	} {
		r, err := ParseAs(tc.kind, tc.text)
		if err != nil {
			t.Errorf("%s %q: %v", tc.kind, tc.text, err)
			continue
		}
		if got := r.String(); got != tc.want {
			t.Errorf("%q: canonical form %q, want %q", tc.text, got, tc.want)
		}
		if !tc.check(r) {
			t.Errorf("%q: parsed as %+v", tc.text, *r)
		}
		// The canonical form parses back to the same rule.
		again, err := Parse(r.String())
		if err != nil || again.String() != r.String() {
			t.Errorf("%q: canonical form does not parse back: %v %v", tc.text, again, err)
		}
	}
}

func TestParseErrorsHavePositions(t *testing.T) {
	for _, tc := range []struct {
		text string
		col  int
		msg  string
	}{
		{"brake LOOKUP", 1, "starts with break or fault"},
		{"break LOKUP /etc", 7, `unknown opcode "LOKUP"`},
		{"break LOOKUP,OPNE /etc", 14, `unknown opcode "OPNE"`},
		{"break /etc/*", 7, "missing opcodes"},
		{"break", 6, "missing opcodes"},
		{"fault OPEN /etc/passwd", 23, "needs an action"},
		{"fault OPEN /etc/passwd ENOENT nth=x", 31, "nth=x"},
		{"fault OPEN /etc/passwd ENOENT nth=0", 31, "nth=0"},
		{"break OPEN /etc/passwd ENOENT", 24, "only a fault"},
		{"fault OPEN /etc/[ ENOENT", 12, "bad path glob"},
		{"fault OPEN /a /b ENOENT", 15, "second path"},
		{"fault READ EIO p=2", 16, "p=2"},
		{"fault READ EIO seed=3", 22, "seed= goes with p="},
		{"fault READ EIO once every=2", 28, "exclude each other"},
		{"break OPEN eof", 15, "eof is a READ's"},
		{"fault OPEN short=3", 19, "short= shortens a READ"},
		{"fault READ delay=forever", 12, "delay=forever"},
		{"fault READ delay=2h", 12, "at most"},
		{"fault FORGET EIO", 17, "no reply"},
		{"fault READ errno=EWHAT EIO", 12, "unknown errno"},
		{"fault READ EIO EIO", 16, "given twice"},
		{"break READ frobnicate", 12, `unknown word "frobnicate"`},
	} {
		_, err := Parse(tc.text)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: error %v, want a SyntaxError", tc.text, err)
			continue
		}
		if se.Col != tc.col || !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("%q: column %d %q, want column %d containing %q", tc.text, se.Col, se.Msg, tc.col, tc.msg)
		}
	}
}

func TestParseFileNamesLines(t *testing.T) {
	src := `# scenario: no passwd, slow libraries
break LOOKUP /etc/*   # the first lookup under /etc

fault OPEN /etc/passwd ENOENT
fault OPEN /lib/** delay=10ms every=2
fault READ /init.krun EIO nth=two
break GETATTR bogus
`
	rules, err := ParseFile("scenario.rules", strings.NewReader(src))
	if len(rules) != 3 {
		t.Errorf("parsed %d rules, want the 3 good ones", len(rules))
	}
	want := []string{
		"scenario.rules:6:27: nth=two: want a whole number from 1",
		`scenario.rules:7:15: unknown word "bogus"`,
	}
	if err == nil {
		t.Fatal("no error for two bad lines")
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Fatalf("errors:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d: %q, want %q", i, got[i], want[i])
		}
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		glob, path string
		want       bool
	}{
		{"/etc/*", "/etc/passwd", true},
		{"/etc/*", "/etc", false},
		{"/etc/*", "/etc/ssl/certs", false},
		{"/lib/*.so*", "/lib/libc.so.6", true},
		{"/lib/*.so*", "/lib/libc.a", false},
		{"/lib/**", "/lib", true},
		{"/lib/**", "/lib/x86_64/libc.so.6", true},
		{"/lib/**", "/libexec/x", false},
		{"/**", "/anything/at/all", true},
		{"/init.krun", "/init.krun", true},
		{"/init.kru?", "/init.krun", true},
		{"", "/whatever", true},
	} {
		if got := matchGlob(tc.glob, tc.path); got != tc.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", tc.glob, tc.path, got, tc.want)
		}
	}
}

func TestFrequency(t *testing.T) {
	fired := func(text string, n int) []uint64 {
		r, err := Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for i := uint64(1); i <= uint64(n); i++ {
			if r.fires(i) {
				out = append(out, i)
			}
		}
		return out
	}
	eq := slices.Equal[[]uint64]
	for _, tc := range []struct {
		text string
		want []uint64
	}{
		{"fault READ EIO", []uint64{1, 2, 3, 4, 5, 6}},
		{"fault READ EIO always", []uint64{1, 2, 3, 4, 5, 6}},
		{"fault READ EIO once", []uint64{1}},
		{"fault READ EIO nth=2", []uint64{2}},
		{"fault READ EIO every=3", []uint64{3, 6}},
	} {
		if got := fired(tc.text, 6); !eq(got, tc.want) {
			t.Errorf("%q fired on %v, want %v", tc.text, got, tc.want)
		}
	}
	// p= with a seed: the same seed fires on the same matches in every
	// run, about p of them; another seed fires on others.
	a := fired("fault READ EIO p=0.1 seed=42", 10000)
	b := fired("fault READ EIO p=0.1 seed=42", 10000)
	c := fired("fault READ EIO p=0.1 seed=43", 10000)
	if !eq(a, b) {
		t.Error("p=0.1 seed=42 fired differently in two runs")
	}
	if eq(a, c) {
		t.Error("seeds 42 and 43 fired on the same matches")
	}
	if len(a) < 800 || len(a) > 1200 {
		t.Errorf("p=0.1 fired %d times in 10000, want about 1000", len(a))
	}
}
