// Command testinit is the /init.krun of the end-to-end tests: it prints a
// marker, writes a file into the shared root and reads one back, checksums
// its own image through /proc/self/exe (reading /init.krun to its end, so
// the host sees the 0-byte read at EOF), reports exit code 42 through ioctl
// 0x7602 on /, and reboots. With KRUN_INIT=sleep it blocks forever; with
// KRUN_INIT=die it exits at once, so the guest kernel panics; with
// KRUN_INIT=chatter it prints numbered lines forever.
package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
)

// init keeps main on thread 1, the only caller whose exit-code ioctl the
// server accepts (the FUSE header carries the calling thread's id).
func init() { runtime.LockOSThread() }

func main() {
	fmt.Println("KRUNBENCH-E2E-MARKER pid", os.Getpid())
	// krunbench passes the workload's program as KRUN_INIT, as libkrun does.
	if mode := os.Getenv("KRUN_INIT"); mode != "" {
		switch mode {
		case "sleep": // for interruption tests: never ends on its own
			fmt.Println("KRUNBENCH-SLEEPING")
			// Not select{}: with no other goroutine the Go runtime calls
			// that a deadlock and exits 2, so the init died, the kernel
			// panicked, and a test's signal raced the guest's end.
			for {
				time.Sleep(time.Hour)
			}
		case "die": // init exits: the kernel panics
			os.Exit(3)
		case "chatter": // for pipe tests: a numbered line every 50 ms, forever
			for i := 0; ; i++ {
				fmt.Println("KRUNBENCH-CHATTER", i)
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	if err := os.WriteFile("/from-guest.txt", []byte("written by the guest\n"), 0o644); err != nil {
		fmt.Println("write failed:", err)
	}
	b, err := os.ReadFile("/to-guest.txt")
	fmt.Printf("read from host: %q %v\n", b, err)
	if err := syscall.Mount("proc", "/proc", "proc", 0, ""); err != nil {
		fmt.Println("mount /proc:", err)
	}
	self, err := os.ReadFile("/proc/self/exe")
	fmt.Printf("own image: %d bytes, sha256 %x %v\n", len(self), sha256.Sum256(self), err)
	root, err := os.Open("/")
	if err == nil {
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, root.Fd(), 0x7602, 42)
		fmt.Println("exit-code ioctl:", errno)
	}
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_RESTART)
}
