// Package cli is kubectl-tpp, the command line of purchase-policy-controller
// (a kubectl plugin, also runnable alone): export a tenant as a policy, plan
// a manifest against the live tenant, show the status of every policy,
// diagnose credentials and permissions, and sign in a delegated admin.
//
// It calls Microsoft through the controller's own clients (internal/m365),
// authenticates through the same credential provider (internal/m365/auth),
// reads policies' credentials from the cluster with the same loader
// (internal/clustercreds) and decides the desired state with the same plan
// (internal/plan): no Microsoft call and no rule is implemented twice.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	// ExitOK: done; for plan, nothing would change.
	ExitOK = 0
	// ExitError: the command failed (bad input, credentials, permissions...).
	ExitError = 1
	// ExitChanges: plan found differences between the manifests and the tenants.
	ExitChanges = 2
)

// Streams are the command's standard input, output and error.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// exitCode ends a command with a code and no further message (plan's 2, or
// doctor's failed step, already reported).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// Run runs kubectl-tpp with args (without the program name) and returns its
// exit code. Errors are printed to s.Err as one line that says what to do.
func Run(ctx context.Context, args []string, s Streams) int {
	a := newApp(s)
	cmd := a.command()
	cmd.SetArgs(args)
	cmd.SetIn(s.In)
	cmd.SetOut(s.Out)
	cmd.SetErr(s.Err)
	err := cmd.ExecuteContext(ctx)
	var code exitCode
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &code):
		return int(code)
	}
	for _, line := range strings.Split(explain(err), "\n") {
		fmt.Fprintln(s.Err, "error: "+line)
	}
	return ExitError
}

// app holds the flags every command shares.
type app struct {
	streams Streams
	creds   credentialFlags
	ms      endpointFlags
	kube    kubeFlags
}

func newApp(s Streams) *app { return &app{streams: s} }

// command builds the command tree.
func (a *app) command() *cobra.Command {
	root := &cobra.Command{
		Use:   "kubectl-tpp",
		Short: "Adopt, review, diagnose and sign in for Microsoft 365 self-service purchase policies",
		Long: "kubectl tpp works with TenantPurchasePolicy resources and the Microsoft 365 tenants they manage,\n" +
			"through the controller's own clients, credentials and desired-state code.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	a.kube.bind(root.PersistentFlags())
	root.AddCommand(a.exportCommand(), a.planCommand(), a.statusCommand(), a.doctorCommand(), a.loginCommand())
	return root
}
