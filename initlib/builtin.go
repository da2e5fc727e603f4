package initlib

import (
	"bytes"
	"encoding/binary"
)

// ShellTemplate is a shell-script init: it mounts the basics and drops to
// a shell. Scripts are re-opened by their interpreter, so sessions serve
// them with a persistent /init.krun entry (see Lasting).
var ShellTemplate = Payload{
	Name:   "shell-template",
	Origin: "builtin",
	Bytes: []byte(`#!/bin/sh
# krunbench shell-script init template: mount the basics, then a shell.
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /tmp && mount -t devpts devpts /dev/pts 2>/dev/null
hostname krunbench 2>/dev/null
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=linux
echo "krunbench: shell-script init; leave the shell to stop the VM"
/bin/sh
echo "krunbench: shell exited with $?; rebooting"
sync
reboot -f
`),
}

// ExitAtOnce is a teaching payload: a 128-byte static x86-64 program that
// calls exit(0) as PID 1, to show what the kernel does when init dies (it
// panics: "Attempted to kill init!").
var ExitAtOnce = Payload{Name: "exit-at-once", Origin: "builtin", Bytes: tinyExitELF()}

// tinyExitELF assembles an ELF executable holding one PT_LOAD segment
// whose code is: xor edi, edi; mov eax, 60 (exit); syscall.
func tinyExitELF() []byte {
	const base = 0x400000
	code := []byte{0x31, 0xff, 0xb8, 0x3c, 0x00, 0x00, 0x00, 0x0f, 0x05}
	const hdrs = 64 + 56
	size := uint64(hdrs + len(code))
	var b bytes.Buffer
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	le := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	le(uint16(2))           // e_type: EXEC
	le(uint16(62))          // e_machine: x86-64
	le(uint32(1))           // e_version
	le(uint64(base + hdrs)) // e_entry
	le(uint64(64))          // e_phoff
	le(uint64(0))           // e_shoff
	le(uint32(0))           // e_flags
	le(uint16(64))          // e_ehsize
	le(uint16(56))          // e_phentsize
	le(uint16(1))           // e_phnum
	le(uint16(0))           // e_shentsize
	le(uint16(0))           // e_shnum
	le(uint16(0))           // e_shstrndx
	le(uint32(1))           // p_type: LOAD
	le(uint32(5))           // p_flags: R+X
	le(uint64(0))           // p_offset
	le(uint64(base))        // p_vaddr
	le(uint64(base))        // p_paddr
	le(size)                // p_filesz
	le(size)                // p_memsz
	le(uint64(0x1000))      // p_align
	b.Write(code)
	return b.Bytes()
}
