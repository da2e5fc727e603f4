// Command vhostserve is krunbench serve --socket --no-tap with one setting
// changed, for guestbench's what-if modes: -direct-io answers every OPEN
// with FOPEN_DIRECT_IO (no guest page cache, like virtiofsd
// --cache=never); -readdirplus is serve's --readdirplus. It is built from
// the same packages as krunbench serve.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/virtiofs/vhostuser"
)

// directIO sets FOPEN_DIRECT_IO on every OPEN and CREATE reply.
type directIO struct{ fuse.FileSystem }

func (d directIO) Open(r *fuse.Request, nodeid uint64, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Errno {
	e := d.FileSystem.Open(r, nodeid, in, out)
	out.OpenFlags |= fuse.FopenDirectIO
	return e
}

func (d directIO) Create(r *fuse.Request, parent uint64, name string, in *fuse.CreateIn, entry *fuse.EntryOut, out *fuse.OpenOut) fuse.Errno {
	e := d.FileSystem.Create(r, parent, name, in, entry, out)
	out.OpenFlags |= fuse.FopenDirectIO
	return e
}

func main() {
	share := flag.String("shared-dir", "", "host directory to serve")
	socket := flag.String("socket", "", "vhost-user socket path")
	tag := flag.String("tag", virtiofs.RootTag, "virtio-fs tag")
	rdp := flag.String("readdirplus", "always", "how READDIRPLUS is offered at INIT: always, auto or off (serve --readdirplus)")
	direct := flag.Bool("direct-io", false, "answer OPEN and CREATE with FOPEN_DIRECT_IO")
	flag.Parse()
	if err := run(*share, *socket, *tag, *rdp, *direct); err != nil {
		fmt.Fprintln(os.Stderr, "vhostserve:", err)
		os.Exit(1)
	}
}

func run(share, socket, tag, rdp string, direct bool) error {
	mode, err := fuse.ParseReaddirplusMode(rdp)
	if err != nil {
		return err
	}
	pt, err := passthrough.New(share, passthrough.Options{})
	if err != nil {
		return err
	}
	var fs fuse.FileSystem = overlay.New(pt)
	if direct {
		fs = directIO{fs}
	}
	dev, err := virtiofs.NewDevice(fuse.NewServer(fs, fuse.Options{Readdirplus: mode}), virtiofs.DeviceOptions{Tag: tag, Workers: 8})
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	err = vhostuser.NewBackend(dev, vhostuser.Options{}).ListenAndServe(ctx, socket)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
