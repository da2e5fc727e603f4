package overlay_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/virtiofs/vhostuser"
)

// A program serves a directory with its own init payload as a
// vhost-user-fs backend, for QEMU's vhost-user-fs-device (chardev
// socket,path=SOCKET) or any other vhost-user frontend. The payload is the
// program's memory, served in place.
func Example_vhostUser() {
	dir, err := os.MkdirTemp("", "shared")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	host, err := passthrough.New(dir, passthrough.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fsys := overlay.New(host)
	myInit := []byte("#!/bin/sh\necho hello from my init\nexec /bin/sh\n")
	if err := fsys.SetPayload(myInit); err != nil { // a script: lasting /init.krun
		fmt.Println(err)
		return
	}
	dev, err := virtiofs.NewDevice(fuse.NewServer(fsys, fuse.Options{}), virtiofs.DeviceOptions{Tag: virtiofs.RootTag})
	if err != nil {
		fmt.Println(err)
		return
	}
	sock := filepath.Join(dir, "vfs.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		fmt.Println(err)
		return
	}
	backend := vhostuser.NewBackend(dev, vhostuser.Options{})
	served := make(chan error, 1)
	go func() { served <- backend.Serve(ln) }()

	// A frontend connects to sock now; the example stops at once.
	conn, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Println(err)
		return
	}
	conn.Close()
	fmt.Printf("serving %d bytes of /init.krun on %s\n", len(fsys.Payload()), filepath.Base(sock))
	backend.Close()
	<-served

	// Output:
	// serving 47 bytes of /init.krun on vfs.sock
}
