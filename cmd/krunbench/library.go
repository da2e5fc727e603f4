package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/krunbench/krunbench/initlib"
)

func newLibraryCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "library", Short: "The library of init payloads, root filesystems and kernels"}
	var dir string
	var rootfs, inits, kernels []string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the library with each item's verdict",
		Long: `list prints the payloads, root filesystems and kernels found in the library
directory (init/, rootfs/, kernel/ under it) and given with flags, with a
verdict each. Payloads are judged against the first root filesystem given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lib := library(dir)
			lib.AddPaths(initlib.KindRootFS, rootfs...)
			addInits(lib, inits)
			addKernels(lib, kernels)
			against := ""
			if len(rootfs) > 0 {
				against = rootfs[0]
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tNAME\tVERDICT\tDETAIL")
			for _, it := range libraryItems(lib, against) {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", it.Kind, it.Name, it.Verdict, it.Detail)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&dir, "dir", initlib.DefaultDir(), "library directory")
	list.Flags().StringArrayVar(&rootfs, "rootfs", nil, "a root filesystem directory (repeatable)")
	list.Flags().StringArrayVar(&inits, "init", nil, "an init payload: a file, or a name run --init takes (repeatable)")
	list.Flags().StringArrayVar(&kernels, "kernel", nil, "a kernel image (repeatable)")
	cmd.AddCommand(list)
	return cmd
}
