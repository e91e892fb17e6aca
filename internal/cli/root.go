// Package cli holds the cobra commands of the strata binary. Each command is
// a thin layer that parses flags and calls the packages that do the work.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes are part of the CLI contract.
const (
	ExitOK    = 0
	ExitFail  = 1
	ExitUsage = 2
)

// exitError carries an exit code through cobra's error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks a mistake in how the command was called.
func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// NewRootCommand builds the strata command tree writing to out and errOut.
func NewRootCommand(out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "strata",
		Short:         "Strata manages fleets of Kubernetes clusters from cluster profiles",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: ExitUsage, err: err}
	})
	root.AddCommand(newVersionCommand(), newSandboxCommand(), newPackCommand(), newProfileCommand(), newDeployCommand(), newDiffCommand(), newManagerCommand(), newGetCommand(), newDescribeCommand(), newClusterCommand(), newRolloutCommand(), newUpCommand(), newDownCommand(), newApplyCommand(), newWaitCommand(), newAgentCommand(), newLoadtestCommand(), newCAPIProvidersCommand())
	return root
}

// Execute runs the command line and returns the process exit code.
func Execute(args []string) int {
	root := NewRootCommand(os.Stdout, os.Stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(os.Stderr, "Error:", err)
	return exitCode(err)
}

// exitCode maps a command error to the exit code of the CLI contract.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case isCobraUsageError(err):
		// cobra reports unknown commands and bad arguments as plain errors.
		return ExitUsage
	default:
		return ExitFail
	}
}
