package kruninit

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// TraceParam is the kernel parameter that turns the milestones on:
// krunbench.trace=1. Its name has a '.', so the kernel takes it for a
// module parameter and does not put it in init's environment: the init
// reads /proc/cmdline for it.
const TraceParam = "krunbench.trace"

// Milestone names, in the order the init reaches them.
const (
	MilestoneMounted = "mounted" // the pseudo file systems are mounted
	MilestoneConfig  = "config"  // config, environment, workdir are set up
	MilestoneExec    = "exec"    // the workload is about to be executed
	MilestoneExit    = "exit"    // the workload ended; Code is reported
)

// MilestonePattern matches a milestone line as the init prints it on the
// console. In multi-line mode it also finds every milestone of a whole
// console transcript, tolerating the "\r"s a tty adds before "\n" and
// workload output left without a newline before the line. Submatches:
// name, t (seconds since boot, CLOCK_BOOTTIME, 6 decimals) and code (only
// on the exit milestone).
var MilestonePattern = regexp.MustCompile(`(?m)krun-init: milestone (?P<name>[a-z][a-z0-9_-]*) t=(?P<t>[0-9]+\.[0-9]{6})(?: code=(?P<code>-?[0-9]+))?\r*$`)

// Milestone is one trace line: a named point of the init's progress.
type Milestone struct {
	// Name is one of the Milestone* names.
	Name string
	// Boot is the time since boot (CLOCK_BOOTTIME); the line keeps
	// microseconds.
	Boot time.Duration
	// Code is the exit code, printed when HasCode (the exit milestone).
	Code    int
	HasCode bool
}

// String formats m as the init prints it, without a newline:
//
//	krun-init: milestone <name> t=<seconds>.<6 digits>[ code=<N>]
func (m Milestone) String() string {
	us := m.Boot.Microseconds()
	if us < 0 {
		us = 0
	}
	s := fmt.Sprintf("krun-init: milestone %s t=%d.%06d", m.Name, us/1e6, us%1e6)
	if m.HasCode {
		s += " code=" + strconv.Itoa(m.Code)
	}
	return s
}

// ParseMilestone finds the first milestone line in s (see
// MilestonePattern).
func ParseMilestone(s string) (Milestone, bool) {
	sub := MilestonePattern.FindStringSubmatch(s)
	if sub == nil {
		return Milestone{}, false
	}
	secs, frac, _ := strings.Cut(sub[2], ".")
	sec, err1 := strconv.ParseInt(secs, 10, 64)
	us, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		return Milestone{}, false
	}
	m := Milestone{Name: sub[1], Boot: time.Duration(sec)*time.Second + time.Duration(us)*time.Microsecond}
	if sub[3] != "" {
		code, err := strconv.Atoi(sub[3])
		if err != nil {
			return Milestone{}, false
		}
		m.Code, m.HasCode = code, true
	}
	return m, true
}

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
		if w == TraceParam {
			on, seen = true, true
		} else if k, v, ok := strings.Cut(w, "="); ok && k == TraceParam {
			on, seen = truthy(v), true
		}
	}
	if seen {
		return on
	}
	v, ok := Getenv(env, TraceParam)
	return ok && truthy(v)
}

func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "1", "y", "yes", "true", "on":
		return true
	}
	return false
}
