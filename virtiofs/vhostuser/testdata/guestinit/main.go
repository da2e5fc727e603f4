// Command guestinit is the /init.krun payload of the vhost-user end-to-end
// test. Run as pid 1 in a guest whose root is virtio-fs, it prints a
// marker on the console, copies /from-host.txt to /from-guest.txt through
// the filesystem, runs /bin/busybox if the root has one, and reboots (QEMU
// runs with -no-reboot, so the VM exits).
package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

func main() {
	fmt.Println("KRUNBENCH-GUEST-UP")
	if err := run(); err != nil {
		fmt.Println("KRUNBENCH-GUEST-ERROR:", err)
	} else {
		fmt.Println("KRUNBENCH-GUEST-DONE")
	}
	syscall.Sync()
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_RESTART)
}

func run() error {
	data, err := os.ReadFile("/from-host.txt")
	if err != nil {
		return err
	}
	if err := os.WriteFile("/from-guest.txt.tmp", append([]byte("guest read: "), data...), 0o644); err != nil {
		return err
	}
	if err := os.Rename("/from-guest.txt.tmp", "/from-guest.txt"); err != nil {
		return err
	}
	if _, err := os.Stat("/bin/busybox"); err == nil {
		out, err := exec.Command("/bin/busybox", "sh", "-c", "echo busybox ran in $(pwd)").CombinedOutput()
		fmt.Printf("%s", out)
		if err != nil {
			return fmt.Errorf("busybox: %w", err)
		}
	}
	return nil
}
