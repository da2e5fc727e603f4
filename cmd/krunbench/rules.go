package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/krunbench/krunbench/virtiofs/rules"
)

// ruleFlags are the init debugger's flags, shared by run and serve.
type ruleFlags struct {
	breaks  []string
	faults  []string
	files   []string
	control string
}

func addRuleFlags(fl *pflag.FlagSet, f *ruleFlags) {
	fl.StringArrayVar(&f.breaks, "break", nil, "hold the guest at a FUSE request: 'OPS [/GLOB] [nodeid=N] [eof] [errno=E] [nth=N]' (repeatable; step it with --control)")
	fl.StringArrayVar(&f.faults, "fault", nil, "inject a fault: 'OPS [/GLOB] [conditions] ERRNO|delay=D|short=N [once|every=N|p=P seed=S]' (repeatable)")
	fl.StringArrayVar(&f.files, "rules", nil, "a rule file: one 'break ...' or 'fault ...' rule a line, # comments (repeatable)")
	fl.StringVar(&f.control, "control", "", "unix socket that steps breakpoints without the TUI: state, wait, step, reply, continue, disable, rules, add RULE")
}

// engine builds the rules engine from the flags, in the order files,
// --break, --fault; nil when no rule is given, so the server pays nothing.
func (f *ruleFlags) engine() (*rules.Engine, error) {
	var all []*rules.Rule
	for _, name := range f.files {
		file, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("--rules: %w", err)
		}
		rs, err := rules.ParseFile(name, file)
		file.Close()
		if err != nil {
			return nil, fmt.Errorf("--rules: %w", err)
		}
		all = append(all, rs...)
	}
	for _, set := range []struct {
		kind  rules.Kind
		texts []string
	}{{rules.Break, f.breaks}, {rules.Fault, f.faults}} {
		for _, text := range set.texts {
			r, err := rules.ParseAs(set.kind, text)
			if err != nil {
				return nil, fmt.Errorf("--%s %q: %w", set.kind, text, err)
			}
			all = append(all, r)
		}
	}
	if len(all) == 0 {
		if f.control != "" {
			return rules.New(), nil // rules come later, through the socket
		}
		return nil, nil
	}
	return rules.New(all...), nil
}

// startControl serves --control while the command runs.
func (f *ruleFlags) startControl(eng *rules.Engine, stderr io.Writer) (stop func(), err error) {
	if f.control == "" || eng == nil {
		return func() {}, nil
	}
	stop, err = eng.ListenControl(context.Background(), f.control)
	if err != nil {
		return nil, fmt.Errorf("--control: %w", err)
	}
	fmt.Fprintf(stderr, "krunbench: breakpoint control on %s\n", f.control)
	return stop, nil
}

// faultSummary names the faults injected so far, for the error of a run
// that failed: "injected faults: rule 1 (fault READ /init.krun nth=2 EIO) fired 1 time".
func faultSummary(eng *rules.Engine) string {
	if eng == nil {
		return ""
	}
	var fired []string
	for _, st := range eng.Rules() {
		if st.Rule.Kind == rules.Fault && st.Hits > 0 {
			fired = append(fired, fmt.Sprintf("rule %d (%s) fired %d time%s", st.ID, st.Rule, st.Hits, plural(st.Hits)))
		}
	}
	if len(fired) == 0 {
		return ""
	}
	return "injected faults: " + strings.Join(fired, "; ")
}

func plural(n uint64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func newRulesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Work with the init debugger's rule files",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Validate a rule file: each rule in its canonical form, or every error with its line and column",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer file.Close()
			rs, err := rules.ParseFile(args[0], file)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return exitError{code: 1}
			}
			for i, r := range rs {
				fmt.Fprintf(cmd.OutOrStdout(), "%d  %s\n", i+1, r)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d rule%s ok\n", args[0], len(rs), plural(uint64(len(rs))))
			return nil
		},
	})
	return cmd
}
