package main

import (
	"fmt"
	"io"
	"strings"
)

// table is one markdown table of the summary: an intro line (none if
// ""), the header and its separator, printed before the first row, so a
// table no row reaches prints nothing; start prints them at once, for a
// table shown even empty.
type table struct {
	w       io.Writer
	intro   string
	header  string
	started bool
}

// newTable is a table under intro whose header is a markdown header line
// ("| a | b |"); the separator has one "---" per column.
func newTable(w io.Writer, intro, header string) *table {
	return &table{w: w, intro: intro, header: header}
}

// start prints the intro, header and separator, once.
func (t *table) start() *table {
	if t.started {
		return t
	}
	t.started = true
	if t.intro != "" {
		fmt.Fprintf(t.w, "\n%s\n", t.intro)
	}
	fmt.Fprintf(t.w, "\n%s\n%s|\n", t.header, strings.Repeat("|---", strings.Count(t.header, "|")-1))
	return t
}

// row prints one row (format without the newline), after the header.
func (t *table) row(format string, args ...any) {
	t.start()
	fmt.Fprintf(t.w, format+"\n", args...)
}
