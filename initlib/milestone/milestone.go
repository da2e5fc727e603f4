// Package milestone is the protocol between a krunbench guest init and
// the host: the kernel parameter that asks the init for its boot
// milestones, and the one-line format in which the init prints them on the
// console. The default init (initlib/cmd/krun-init) writes these lines;
// the session and the workbench parse them. Neither side depends on the
// other's code, only on this package, so any init may speak it.
package milestone

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
	Mounted = "mounted" // the pseudo file systems are mounted
	Config  = "config"  // config, environment, workdir are set up
	Exec    = "exec"    // the workload is about to be executed
	Exit    = "exit"    // the workload ended; Code is reported
)

// Pattern matches a milestone line as the init prints it on the console.
// In multi-line mode it also finds every milestone of a whole console
// transcript, tolerating the "\r"s a tty adds before "\n" and workload
// output left without a newline before the line. Submatches: name, t
// (seconds since boot, CLOCK_BOOTTIME, 6 decimals) and code (only on the
// exit milestone).
var Pattern = regexp.MustCompile(`(?m)krun-init: milestone (?P<name>[a-z][a-z0-9_-]*) t=(?P<t>[0-9]+\.[0-9]{6})(?: code=(?P<code>-?[0-9]+))?\r*$`)

// Milestone is one trace line: a named point of the init's progress.
type Milestone struct {
	// Name is one of the milestone names above.
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

// Parse finds the first milestone line in s (see Pattern).
func Parse(s string) (Milestone, bool) {
	sub := Pattern.FindStringSubmatch(s)
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
