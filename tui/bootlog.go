package tui

import (
	"regexp"
	"strings"
)

// kernelLine is how a kernel message starts on the console when the
// kernel stamps its messages with the time since boot (printk.time=1,
// which the session puts on the command line whenever boot messages are
// shown): "[    0.123456] ".
var kernelLine = regexp.MustCompile(`^\[\s*\d+\.\d{6}\] `)

// kernelLogLimit bounds the kernel lines kept (a guest kernel's boot
// prints a few hundred).
const kernelLogLimit = 5000

// kernelLog collects the kernel's messages from the console output: the
// kernel writes to the same console as the guest (hvc0), so its messages
// are told apart by their time stamps. They are collected as they come,
// from "Linux version" on, during boot and after (a panic included),
// whatever the guest prints later. A message the kernel printed in the
// middle of a guest line is not found.
type kernelLog struct {
	lines   []string
	partial []byte
}

// write takes the next console output.
func (k *kernelLog) write(b []byte) {
	for len(b) > 0 {
		i := strings.IndexByte(string(b), '\n')
		if i < 0 {
			k.partial = append(k.partial, b...)
			if len(k.partial) > 4096 { // not a kernel line: too long
				k.partial = k.partial[:0]
			}
			return
		}
		k.partial = append(k.partial, b[:i]...)
		b = b[i+1:]
		k.line(string(k.partial))
		k.partial = k.partial[:0]
	}
}

func (k *kernelLog) line(l string) {
	l = strings.TrimRight(l, "\r")
	if i := strings.LastIndexByte(l, '\r'); i >= 0 {
		l = l[i+1:]
	}
	if !kernelLine.MatchString(l) {
		return
	}
	if len(k.lines) >= kernelLogLimit {
		k.lines = append(k.lines[:0], k.lines[len(k.lines)-kernelLogLimit/2:]...)
	}
	k.lines = append(k.lines, l)
}

func (k *kernelLog) reset() { k.lines, k.partial = nil, nil }
