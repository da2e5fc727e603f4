package rules

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// SyntaxError is a rule that does not parse, with where: File and Line
// when it came from a rule file, Col (from 1) of the offending word.
type SyntaxError struct {
	File string
	Line int
	Col  int
	Msg  string
}

func (e *SyntaxError) Error() string {
	switch {
	case e.File != "":
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	case e.Line != 0:
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("column %d: %s", e.Col, e.Msg)
}

// maxDelay bounds delay=: a longer one is a typo, not a test.
const maxDelay = time.Hour

// opcodes maps the names fuse.OpName gives (READ, LOOKUP...) to opcodes,
// from the server's own table.
var opcodes = func() map[string]uint32 {
	m := map[string]uint32{}
	for op := uint32(1); op < 64; op++ {
		if name := fuse.OpName(op); !strings.HasPrefix(name, "OP_") {
			m[name] = op
		}
	}
	return m
}()

// errnos maps the names trace.ErrnoName knows (ENOENT...) to errnos.
var errnos = func() map[string]syscall.Errno {
	m := map[string]syscall.Errno{}
	for e := 1; e < 134; e++ {
		if name := trace.ErrnoName(e); strings.HasPrefix(name, "E") {
			m[name] = syscall.Errno(e)
		}
	}
	return m
}()

// noReply are the opcodes the kernel expects no answer to: a fault
// cannot answer them with an errno.
const noReply = 1<<fuse.OpForget | 1<<fuse.OpBatchForget | 1<<fuse.OpInterrupt

// Parse parses one rule: its kind (break or fault) and the rest.
func Parse(text string) (*Rule, error) {
	return parse(0, text)
}

// ParseAs parses a rule of a known kind without the kind word, as
// --break and --fault take it ("OPEN /etc/passwd ENOENT").
func ParseAs(kind Kind, text string) (*Rule, error) {
	return parse(kind, text)
}

// ParseFile parses a rule file: one rule a line, blank lines and # comments
// ignored. Errors name the file, line and column; all of them are returned
// (joined), so one check shows every mistake.
func ParseFile(name string, r io.Reader) ([]*Rule, error) {
	var rules []*Rule
	var errs []error
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		if strings.TrimSpace(text) == "" {
			continue
		}
		rule, err := parse(0, text)
		if se, ok := err.(*SyntaxError); ok {
			se.File, se.Line = name, line
			errs = append(errs, se)
			continue
		}
		rules = append(rules, rule)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	return rules, errors.Join(errs...)
}

// word is one whitespace-separated word of a rule and its column.
type word struct {
	text string
	col  int
}

func split(text string) []word {
	var ws []word
	start := -1
	for i, c := range text + " " {
		space := c == ' ' || c == '\t' || c == '\r'
		switch {
		case space && start >= 0:
			ws = append(ws, word{text[start:i], start + 1})
			start = -1
		case !space && start < 0:
			start = i
		}
	}
	return ws
}

// parser holds one rule being parsed.
type parser struct {
	r    Rule
	seen map[string]bool
}

func parse(kind Kind, text string) (*Rule, error) {
	ws := split(text)
	p := &parser{r: Rule{Kind: kind, Source: strings.TrimSpace(text)}, seen: map[string]bool{}}
	bad := func(w word, format string, args ...any) error {
		return &SyntaxError{Col: w.col, Msg: fmt.Sprintf(format, args...)}
	}
	end := word{col: len(text) + 1}
	if kind == 0 {
		if len(ws) == 0 {
			return nil, bad(end, "empty rule: want break or fault, then opcodes")
		}
		switch strings.ToLower(ws[0].text) {
		case "break":
			p.r.Kind = Break
		case "fault":
			p.r.Kind = Fault
		default:
			return nil, bad(ws[0], "%q: a rule starts with break or fault", ws[0].text)
		}
		ws = ws[1:]
	}
	if len(ws) == 0 {
		return nil, bad(end, "missing opcodes (LOOKUP, READ,OPEN, or *)")
	}
	if err := p.ops(ws[0]); err != nil {
		return nil, err
	}
	ws = ws[1:]
	if len(ws) > 0 && strings.HasPrefix(ws[0].text, "/") {
		g := ws[0].text
		if _, err := path.Match(strings.TrimSuffix(g, "/**"), ""); err != nil {
			return nil, bad(ws[0], "bad path glob %q: %v", g, err)
		}
		p.r.Glob = g
		ws = ws[1:]
	}
	for _, w := range ws {
		if err := p.option(w); err != nil {
			return nil, err
		}
	}
	if err := p.check(end); err != nil {
		return nil, err
	}
	r := p.r
	return &r, nil
}

func (p *parser) ops(w word) error {
	if w.text == "*" {
		p.r.Ops = AllOps
		return nil
	}
	col := w.col
	for name := range strings.SplitSeq(w.text, ",") {
		op, ok := opcodes[strings.ToUpper(name)]
		if !ok {
			msg := fmt.Sprintf("unknown opcode %q (LOOKUP, GETATTR, OPEN, READ, READDIRPLUS..., or *)", name)
			if strings.HasPrefix(name, "/") {
				msg = fmt.Sprintf("missing opcodes before the path %q", name)
			}
			return &SyntaxError{Col: col, Msg: msg}
		}
		p.r.Ops |= 1 << op
		col += len(name) + 1
	}
	return nil
}

// option parses one word after the opcodes and the glob.
func (p *parser) option(w word) error {
	bad := func(format string, args ...any) error {
		return &SyntaxError{Col: w.col, Msg: fmt.Sprintf(format, args...)}
	}
	key, val, hasVal := strings.Cut(w.text, "=")
	key = strings.ToLower(key)
	if e, ok := errnos[strings.ToUpper(w.text)]; ok && !hasVal {
		key = "errno-action"
		if p.r.Kind != Fault {
			return bad("%s: only a fault answers with an errno (errno=%s matches the reply's)", w.text, w.text)
		}
		p.r.Errno = e
	}
	if p.seen[key] {
		return bad("%s given twice", key)
	}
	p.seen[key] = true
	if hasVal && val == "" {
		return bad("%s= needs a value", key)
	}
	num := func() (uint64, error) {
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil || n == 0 {
			return 0, bad("%s=%s: want a whole number from 1", key, val)
		}
		return n, nil
	}
	var err error
	switch {
	case key == "errno-action":
	case key == "eof" && !hasVal:
		p.r.EOF = true
	case key == "once" && !hasVal:
		p.r.Once = true
	case key == "always" && !hasVal:
	case key == "nodeid" && hasVal:
		p.r.Nodeid, err = num()
	case key == "nth" && hasVal:
		p.r.Nth, err = num()
	case key == "every" && hasVal:
		p.r.Every, err = num()
	case key == "seed" && hasVal:
		if p.r.Seed, err = strconv.ParseUint(val, 10, 64); err != nil {
			return bad("seed=%s: want a whole number", val)
		}
	case key == "p" && hasVal:
		f, perr := strconv.ParseFloat(val, 64)
		if perr != nil || !(f > 0 && f <= 1) || math.IsNaN(f) {
			return bad("p=%s: want a probability above 0 and at most 1", val)
		}
		p.r.P = f
	case key == "errno" && hasVal:
		e, ok := errnos[strings.ToUpper(val)]
		if !ok {
			return bad("errno=%s: unknown errno (ENOENT, EIO, EACCES...)", val)
		}
		p.r.ReplyErrno = e
	case key == "delay" && hasVal:
		if p.r.Kind != Fault {
			return bad("delay= is a fault's action, not a breakpoint's")
		}
		d, derr := time.ParseDuration(val)
		if derr != nil || d <= 0 || d > maxDelay {
			return bad("delay=%s: want a duration such as 200ms or 2s, at most %v", val, maxDelay)
		}
		p.r.Delay = d
	case key == "short" && hasVal:
		if p.r.Kind != Fault {
			return bad("short= is a fault's action, not a breakpoint's")
		}
		n, nerr := num()
		if nerr != nil || n > fuse.MaxWrite {
			return bad("short=%s: want a byte count from 1 to %d", val, fuse.MaxWrite)
		}
		p.r.Short = uint32(n)
	case strings.HasPrefix(w.text, "/"):
		return bad("a second path %q: one glob a rule", w.text)
	default:
		return bad("unknown word %q (conditions: nodeid= eof errno= nth=; actions: ERRNO delay= short=; once always every= p= seed=)", w.text)
	}
	return err
}

// check validates the rule as a whole; end is the column past its text.
func (p *parser) check(end word) error {
	r := &p.r
	bad := func(format string, args ...any) error {
		return &SyntaxError{Col: end.col, Msg: fmt.Sprintf(format, args...)}
	}
	readOnly := r.Ops == 1<<fuse.OpRead
	freq := 0
	for _, set := range []bool{r.Once, r.Every != 0, r.P != 0, r.Nth != 0} {
		if set {
			freq++
		}
	}
	switch {
	case freq > 1:
		return bad("once, every=, p= and nth= exclude each other")
	case p.seen["seed"] && r.P == 0:
		return bad("seed= goes with p=")
	case r.EOF && !readOnly:
		return bad("eof is a READ's condition: the opcodes must be READ alone")
	case r.Short != 0 && !readOnly:
		return bad("short= shortens a READ: the opcodes must be READ alone")
	case r.Kind == Fault && r.Errno == 0 && r.Delay == 0 && r.Short == 0:
		return bad("a fault needs an action: an errno (ENOENT, EIO...), delay=DURATION or short=N")
	case r.Errno != 0 && r.Short != 0:
		return bad("a fault answers with an errno or shortens the READ, not both")
	case r.Errno != 0 && r.Ops&^noReply == 0:
		return bad("FORGET, BATCH_FORGET and INTERRUPT get no reply: no errno to inject")
	case r.ReplyErrno != 0 && r.Short != 0:
		return bad("errno= matches a failed reply, which has no data to shorten")
	}
	return nil
}
