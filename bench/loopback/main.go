// Command loopback is fusebench's go-fuse peer: go-fuse v2's
// fs.NewLoopbackRoot serving -shared-dir at a mount point, with the mount
// settings krunbench serve negotiates (see main), so that fusebench
// compares servers rather than settings. bench/internal/peers builds it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// The defaults mirror what `krunbench serve` negotiates, so that fusebench
// compares servers rather than mount settings: 1s entry and attribute
// timeouts (passthrough.DefaultTimeout), 1 MiB requests (fuse.MaxWrite),
// max_background 256 and congestion_threshold 192 (fuse.Server's INIT
// reply), allow_other and no default_permissions (fusedev.New). FUSE
// passthrough (kernel 6.9+: reads and writes go straight to the backing
// file, never reaching the server) is off unless asked for, because
// virtio-fs has no such thing and krunbench does not use it.
func main() {
	var (
		sharedDir     = flag.String("shared-dir", "", "host directory to serve (required)")
		mountPoint    = flag.String("mount", "", "mount point (required)")
		entryTimeout  = flag.Duration("entry-timeout", time.Second, "kernel dentry cache timeout")
		attrTimeout   = flag.Duration("attr-timeout", time.Second, "kernel attribute cache timeout")
		maxWrite      = flag.Int("max-write", 1<<20, "largest READ and WRITE request, in bytes")
		maxBackground = flag.Int("max-background", 256, "background (readahead) requests in flight; 0 keeps the kernel's 12")
		congestion    = flag.Int("congestion-threshold", 192, "background requests at which the kernel throttles")
		defaultPerms  = flag.Bool("default-permissions", false, "let the kernel check permissions")
		disableSplice = flag.Bool("disable-splice", false, "copy READ data through a buffer instead of splicing it")
		passthrough   = flag.Bool("passthrough", false, "let the kernel read and write files directly (FUSE passthrough, needs root)")
		debug         = flag.Bool("debug", false, "log every request")
	)
	flag.Parse()
	if *sharedDir == "" || *mountPoint == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: loopback -shared-dir DIR -mount MNT [flags]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	root, err := fs.NewLoopbackRoot(*sharedDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loopback:", err)
		os.Exit(1)
	}
	opts := &fs.Options{
		EntryTimeout:    entryTimeout,
		AttrTimeout:     attrTimeout,
		NullPermissions: true,
		MountOptions: fuse.MountOptions{
			AllowOther:          true,
			MaxWrite:            *maxWrite,
			MaxBackground:       *maxBackground,
			CongestionThreshold: *congestion,
			DirectMountStrict:   true,
			DisableSplice:       *disableSplice,
			Debug:               *debug,
			FsName:              *sharedDir,
			Name:                "loopback",
		},
	}
	if !*passthrough {
		opts.DisabledCapabilities |= fuse.CAP_PASSTHROUGH
	}
	if *defaultPerms {
		opts.Options = append(opts.Options, "default_permissions")
	}
	server, err := fs.Mount(*mountPoint, root, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loopback: mount:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "loopback: serving %s on %s\n", *sharedDir, *mountPoint)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		if err := server.Unmount(); err != nil {
			fmt.Fprintln(os.Stderr, "loopback: unmount:", err)
			os.Exit(1)
		}
	}()
	server.Wait()
}
