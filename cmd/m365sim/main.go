// Command m365sim runs the Microsoft 365 tenant simulator: an Entra token
// endpoint, the self-service purchase policy API and a Graph subset over TLS,
// for many tenants, plus an admin API under /_sim/. See internal/m365sim.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// maxPrintedTenants bounds how many tenants' credentials are printed.
const maxPrintedTenants = 10

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sim, err := start(os.Args[1:], os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "m365sim:", err)
		os.Exit(2)
	}
	<-ctx.Done()
	sim.Close()
	fmt.Fprintln(os.Stdout, "m365sim: stopped")
}

// config holds the command-line flags.
type config struct {
	addr                         string
	authPort, licPort, graphPort int
	tenants                      int
	tenantsFile, caFile, ready   string
	seed                         int64
	tokenLifetime                time.Duration
	pageSize                     int
	deviceInterval, deviceLife   time.Duration
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("m365sim", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", m365sim.DefaultAddr, "host to listen on")
	fs.IntVar(&c.authPort, "authority-port", 0, "port of the Entra authority endpoint (0 = any)")
	fs.IntVar(&c.licPort, "licensing-port", 0, "port of the licensing API and the admin API (0 = any)")
	fs.IntVar(&c.graphPort, "graph-port", 0, "port of the Graph API (0 = any)")
	fs.IntVar(&c.tenants, "tenants", 0, "generate N tenants with deterministic IDs, each with an app holding every permission")
	fs.StringVar(&c.tenantsFile, "tenants-file", "", "JSON file with tenants, apps and delegated logins (see m365sim.FleetFile)")
	fs.StringVar(&c.caFile, "ca-file", "", "write the CA certificate (PEM) here; clients trust it with --ca-file")
	fs.StringVar(&c.ready, "ready-file", "", "write endpoints, admin URL, CA path and credentials (JSON) here once listening")
	fs.Int64Var(&c.seed, "seed", 1, "seed for generated IDs")
	fs.DurationVar(&c.tokenLifetime, "token-lifetime", m365sim.DefaultTokenLifetime, "lifetime of issued access tokens")
	fs.IntVar(&c.pageSize, "page-size", m365sim.DefaultPageSize, "Graph page size")
	fs.DurationVar(&c.deviceInterval, "device-code-interval", m365sim.DefaultDeviceCodeInterval, "polling interval the device code flow names (whole seconds)")
	fs.DurationVar(&c.deviceLife, "device-code-lifetime", m365sim.DefaultDeviceCodeLifetime, "lifetime of a device code")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if c.tenants < 0 {
		return c, errors.New("--tenants must not be negative")
	}
	return c, nil
}

// start parses flags, starts the simulator, provisions tenants, prints the
// endpoints and writes the ready file.
func start(args []string, out io.Writer) (*m365sim.Server, error) {
	c, err := parseFlags(args, out)
	if err != nil {
		return nil, err
	}
	sim, err := m365sim.New(m365sim.Options{Addr: c.addr, Ports: [3]int{c.authPort, c.licPort, c.graphPort}, CAFile: c.caFile,
		TokenLifetime: c.tokenLifetime, PageSize: c.pageSize, Seed: c.seed,
		DeviceCodeInterval: c.deviceInterval, DeviceCodeLifetime: c.deviceLife})
	if err != nil {
		return nil, err
	}
	if err := sim.Start(); err != nil {
		return nil, err
	}
	tenants, err := provision(sim, c)
	if err != nil {
		sim.Close()
		return nil, err
	}
	info := sim.ReadyInfo(tenants)
	printInfo(out, info, c.ready == "")
	if c.ready != "" {
		if err := writeReadyFile(c.ready, info); err != nil {
			sim.Close()
			return nil, err
		}
	}
	return sim, nil
}

func provision(sim *m365sim.Server, c config) ([]m365sim.ReadyTenant, error) {
	var tenants []m365sim.ReadyTenant
	if c.tenantsFile != "" {
		f, err := m365sim.LoadFleetFile(c.tenantsFile)
		if err != nil {
			return nil, err
		}
		if tenants, err = sim.Provision(f); err != nil {
			return nil, err
		}
	}
	gen, err := sim.GenerateFleet(c.tenants)
	if err != nil {
		return nil, err
	}
	return append(tenants, gen...), nil
}

// printInfo prints the endpoints and the first tenants; app secrets (simulator
// credentials) only when there is no ready file to carry them.
func printInfo(out io.Writer, info m365sim.ReadyInfo, withSecrets bool) {
	fmt.Fprintf(out, "m365sim listening\n  authority: %s\n  licensing: %s\n  graph:     %s\n  admin:     %s/_sim/\n", info.AuthorityHost, info.Licensing, info.Graph, info.AdminURL)
	if info.CAFile != "" {
		fmt.Fprintf(out, "  CA file:   %s\n", info.CAFile)
	}
	fmt.Fprintf(out, "  tenants:   %d\n", len(info.Tenants))
	for i, t := range info.Tenants {
		if i == maxPrintedTenants {
			fmt.Fprintf(out, "  ... %d more (see the ready file or GET %s/_sim/tenants)\n", len(info.Tenants)-i, info.AdminURL)
			break
		}
		for _, a := range t.Apps {
			secret := "(secret in the ready file)"
			if withSecrets {
				secret = "secret " + a.Secret
			}
			fmt.Fprintf(out, "  tenant %s (%s) app %s %s\n", t.ID, t.Name, a.ClientID, secret)
		}
	}
}

// writeReadyFile writes the ready file atomically (a reader never sees half of it).
func writeReadyFile(path string, info m365sim.ReadyInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing ready file: %w", err)
	}
	return os.Rename(tmp, path)
}
