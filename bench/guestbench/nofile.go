package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// nofileMargin is what virtiofsd needs beside one descriptor per inode
// (its own, the vhost-user socket, eventfds, the guest's memory fds).
const nofileMargin = 1024

// virtiofsdNofile decides whether virtiofsd can serve a tree of files
// inodes: it keeps an O_PATH descriptor per inode, so it needs
// RLIMIT_NOFILE above that. By default it raises its own limit (soft and
// hard) to min(1000000, fs.file-max - 16384), which needs CAP_SYS_RESOURCE
// above the hard limit; without it setrlimit fails with EPERM, which
// virtiofsd ignores without a word and runs with the limit it was given.
//
// It returns extra virtiofsd arguments, a sentence for the mode's
// description, and whether virtiofsd can hold a descriptor per inode of
// the tree. Where it cannot it still walks the tree, given the hard limit
// (--rlimit-nofile=<hard>, so the run says which limit applied), and the
// row records what it does past it, as fusebench's memory row does for
// passthrough_hp: the lookups that fail, whether it still serves. Seen on
// the session-11 machine: hard limit 20000, CAP_SYS_RESOURCE not in the
// effective set (CapEff 000001fffeffffff): virtiofsd's processes in a
// guest boot, 12,658 descriptors open, showed 20000/20000 in
// /proc/PID/limits; setrlimit above 20000 gets EPERM here (prlimit, ulimit
// -n), so --rlimit-nofile=100000 cannot help and neither can the harness
// raising the limit for its child: 100,000 inodes cannot be had.
func virtiofsdNofile(files int) (args []string, desc string, ok bool) {
	need := uint64(files) + nofileMargin
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return nil, fmt.Sprintf("getrlimit: %v", err), false
	}
	if hasCapSysResource() {
		return nil, fmt.Sprintf("it raises RLIMIT_NOFILE itself (its default --rlimit-nofile, min(1000000, fs.file-max - 16384)), this process having CAP_SYS_RESOURCE; needs %d", need), true
	}
	// Without the capability virtiofsd's default (up to 1,000,000) is
	// above the hard limit and dropped without a word: ask for the hard
	// limit itself, which needs no capability.
	args = []string{fmt.Sprintf("--rlimit-nofile=%d", lim.Max)}
	if lim.Max >= need {
		return args, fmt.Sprintf("run with --rlimit-nofile=%d (the hard limit; no CAP_SYS_RESOURCE to go above it); needs %d", lim.Max, need), true
	}
	return args, fmt.Sprintf("run past its limit: --rlimit-nofile=%d, the hard limit, below the %d it needs (a descriptor per inode) and no CAP_SYS_RESOURCE to raise it (its own setrlimit gets EPERM, which it ignores); its lookups fail with EMFILE past the limit, and the row records what it did", lim.Max, need), false
}

// hasCapSysResource says whether CAP_SYS_RESOURCE is in this process's
// effective set (a child started by it inherits it as root).
func hasCapSysResource() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[0].Effective&(1<<unix.CAP_SYS_RESOURCE) != 0
}
