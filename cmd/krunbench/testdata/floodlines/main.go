// Command floodlines is the guest workload of the console flood tests
// (issue 16): "floodlines BYTES" writes numbered 64-byte lines to stdout
// (the guest console), at least BYTES in all, in large writes, between a
// begin and an end line. Each line's tail is derived from its number, so
// the host sees a lost, repeated, reordered or damaged line as a line that
// is not the one it expects next (console_flood_test.go checks the same
// format).
package main

import (
	"fmt"
	"os"
	"strconv"
)

// lineSize is the length of one numbered line, newline included.
const lineSize = 64

// floodLine appends line n: ten digits, a space, 52 letters that depend on
// n, a newline.
func floodLine(b []byte, n int) []byte {
	b = fmt.Appendf(b, "%010d ", n)
	for i := range lineSize - 12 {
		b = append(b, byte('a'+(n*7+i*3)%26))
	}
	return append(b, '\n')
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: floodlines BYTES")
		os.Exit(2)
	}
	size, err := strconv.Atoi(os.Args[1])
	if err != nil || size <= 0 {
		fmt.Fprintln(os.Stderr, "floodlines: BYTES must be a positive number")
		os.Exit(2)
	}
	lines := (size + lineSize - 1) / lineSize
	fmt.Printf("floodlines: begin %d lines\n", lines)
	buf := make([]byte, 0, 64<<10)
	for n := 1; n <= lines; n++ {
		buf = floodLine(buf, n)
		if len(buf)+lineSize > cap(buf) || n == lines {
			if _, err := os.Stdout.Write(buf); err != nil {
				fmt.Fprintln(os.Stderr, "floodlines:", err)
				os.Exit(1)
			}
			buf = buf[:0]
		}
	}
	fmt.Printf("floodlines: end %d lines\n", lines)
}
