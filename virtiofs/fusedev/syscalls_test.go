package fusedev_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// straced is strace attached to every thread of a running process,
// recording some system calls into a file.
type straced struct {
	cmd *exec.Cmd
	out string
}

// attachStrace attaches strace -f to pid, tracing the calls in filter
// (strace's -e trace=), and returns once strace says it is attached, so
// that nothing the test does next escapes it. Skips where there is no
// strace (CI installs it: .ci/run).
func attachStrace(t *testing.T, pid int, filter string) *straced {
	t.Helper()
	bin, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("SKIPPED: no strace")
	}
	s := &straced{out: filepath.Join(t.TempDir(), "strace.out")}
	// strace says "Process N attached" on stderr once every thread is.
	s.cmd = exec.Command(bin, "-f", "-e", "trace="+filter, "-o", s.out, "-p", strconv.Itoa(pid))
	stderr, err := s.cmd.StderrPipe()
	must(t, err)
	must(t, s.cmd.Start())
	attached := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			if !said && strings.Contains(sc.Text(), "attached") {
				said = true
				attached <- true
			}
		}
		if !said {
			attached <- false
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
	})
	select {
	case ok := <-attached:
		if !ok {
			t.Fatalf("strace -p %d did not attach", pid)
		}
	case <-time.After(mountTimeout):
		t.Fatalf("strace -p %d not attached after %v", pid, mountTimeout)
	}
	return s
}

// lines detaches strace and returns the lines it recorded.
func (s *straced) lines(t *testing.T) []string {
	t.Helper()
	must(t, s.cmd.Process.Signal(unix.SIGINT))
	_ = s.cmd.Wait()
	b, err := os.ReadFile(s.out)
	must(t, err)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestSplicedWriteSyscalls counts the server's fcntl(F_GETFL) calls
// while large WRITEs are spliced to one open file: whether a handle can
// take spliced data (no O_APPEND, no O_DIRECT) is known from its open
// flags, so no WRITE asks the host again. Before it was cached in the
// handle, every spliced WRITE made one F_GETFL (32 for 32 WRITEs here).
func TestSplicedWriteSyscalls(t *testing.T) {
	requireRoot(t)
	pipeMaxSize(t, 1<<20) // as shipped: 512 KiB WRITEs
	mt := mount(t, mountOpts{})
	const mib = 1 << 20
	data := make([]byte, 16*mib)
	_, _ = io.ReadFull(newPattern(), data)
	f, err := os.Create(mt.path("big.bin"))
	must(t, err)
	defer f.Close()
	before := mt.splicedWrites(t)

	st := attachStrace(t, mt.cmd.Process.Pid, "fcntl")
	for off := 0; off < len(data); off += mib {
		_, err := f.WriteAt(data[off:off+mib], int64(off))
		must(t, err)
	}
	lines := st.lines(t)
	must(t, f.Close())
	spliced := mt.splicedWrites(t) - before
	checkHost(t, mt.host("big.bin"), data)

	getfl := 0
	for _, l := range lines {
		if strings.Contains(l, "F_GETFL") {
			getfl++
		}
	}
	t.Logf("%d WRITEs spliced, %d F_GETFL", spliced, getfl)
	if spliced < 8 {
		t.Fatalf("only %d large WRITEs spliced; the test measures nothing", spliced)
	}
	if getfl > 2 {
		t.Fatalf("%d fcntl(F_GETFL) for %d spliced WRITEs to one open file:\n%s",
			getfl, spliced, strings.Join(lines[:min(len(lines), 10)], "\n"))
	}
}
