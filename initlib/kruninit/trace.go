package kruninit

import (
	"strings"

	"github.com/krunbench/krunbench/initlib/milestone"
)

// KernelWords splits a kernel command line as the kernel does: words are
// separated by blanks, double quotes group blanks into a word and are
// removed. Words after "--" are init's arguments; KernelWords keeps them.
func KernelWords(cmdline string) []string {
	var words []string
	var cur strings.Builder
	inQuote, inWord := false, false
	for _, c := range cmdline {
		switch {
		case c == '"':
			inQuote = !inQuote
			inWord = true
		case !inQuote && (c == ' ' || c == '\t' || c == '\n'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// TraceEnabled reports whether krunbench.trace is on: set to 1, y, yes,
// true or on (or given bare) among the kernel parameters of cmdline (the
// contents of /proc/cmdline; words after "--" belong to the workload and
// do not count; of repeated words the last wins), or else as an entry of
// env.
func TraceEnabled(cmdline string, env []string) bool {
	on, seen := false, false
	for _, w := range KernelWords(cmdline) {
		if w == "--" {
			break
		}
		if w == milestone.TraceParam {
			on, seen = true, true
		} else if k, v, ok := strings.Cut(w, "="); ok && k == milestone.TraceParam {
			on, seen = truthy(v), true
		}
	}
	if seen {
		return on
	}
	v, ok := Getenv(env, milestone.TraceParam)
	return ok && truthy(v)
}

func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "1", "y", "yes", "true", "on":
		return true
	}
	return false
}
