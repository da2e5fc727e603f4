package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/krunbench/krunbench/themes"
	"github.com/krunbench/krunbench/tui"
)

// newReplayCmd is `krunbench replay FILE`: a recorded session played back
// in the TUI, with its original timing.
func newReplayCmd() *cobra.Command {
	var themeSpec string
	var speed float64
	cmd := &cobra.Command{
		Use:   "replay FILE",
		Short: "Play a recorded session back in the TUI: console, FUSE traffic, inodes, stats",
		Long: "Play a recording back in the TUI with its original timing (scaled by --speed).\n" +
			"Keys: tab cycles the panes, ? lists every key, q quits.\n" +
			"NO_COLOR, when set, turns colours off whatever --theme says.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needTerminal(cmd, "replay", "to print a recording: krunbench trace show FILE"); err != nil {
				return err
			}
			if speed < 0 {
				return fmt.Errorf("--speed %g: must be positive (0 replays as fast as possible)", speed)
			}
			th, err := themes.Resolve(themeSpec, os.Environ())
			if err != nil {
				return err
			}
			src, err := tui.OpenReplay(args[0], speed)
			if err != nil {
				return err
			}
			m := tui.New(tui.Options{Theme: th, Source: src, Title: "replay " + filepath.Base(args[0])})
			defer m.Close()
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(cmd.InOrStdin()), tea.WithOutput(cmd.OutOrStdout()))
			_, err = p.Run()
			return err
		},
	}
	cmd.Flags().StringVar(&themeSpec, "theme", themes.Default,
		"colour theme: "+strings.Join(themes.Names(), ", ")+", or a theme file (.json)")
	cmd.Flags().Float64Var(&speed, "speed", 1, "playback speed factor (2 = twice as fast, 0 = no waiting)")
	return cmd
}
