// Command m365sim runs the Microsoft 365 tenant simulator: an Entra token
// endpoint, the self-service purchase policy API and a Graph subset over TLS,
// for many tenants, plus an admin API under /_sim/. See internal/m365sim. It
// only parses flags, writes the ready file and serves; it must not be used
// by the controller except through the controller's endpoint flags.
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
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// maxPrintedTenants bounds how many tenants' credentials are printed.
const maxPrintedTenants = 10

// defaultMemoryLimit is the Go runtime's soft memory limit unless GOMEMLIMIT
// says otherwise: 10,000 tenants under load hold about 250 MiB live, and the
// limit keeps the collector from letting the heap double on top of that.
const defaultMemoryLimit = 512 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
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
	latency, jitter, inFlight    time.Duration
	throttle                     m365sim.Throttle
	chaos                        m365sim.Chaos
	lifecycle                    m365sim.Lifecycle
	sinkPort, maxLogEntries      int
}

// Defaults of the command (the library's are all off, so unit tests stay
// fast and exact).
const (
	// defaultLatency is a normal round trip from a cluster to Microsoft.
	defaultLatency = 150 * time.Millisecond
	defaultJitter  = 30 * time.Millisecond
	// defaultThrottleRate and defaultThrottleBurst are per tenant, app and
	// service. An honest client with at most 4 requests in flight per tenant
	// and service sends at most 4 / 120 ms (the fastest round trip with the
	// default jitter) = 33 a second, below 35, and its 4 in flight fit the
	// burst of 8: it is never throttled. A client that sends a tenant's ~20
	// PUTs at once is: past 8 it gets 429 and waits at least a second. For
	// scale: Microsoft publishes 3,500 resource units per 10 s per app and
	// tenant for Graph identity reads and 3,000 writes per 150 s (20/s);
	// the licensing API's limits are not published.
	defaultThrottleRate  = 35
	defaultThrottleBurst = 8
	// defaultMaxLogEntries bounds each tenant's request log (counters keep
	// counting): 10,000 tenants × 100 entries (about 200 bytes each) stay
	// around 200 MiB however long the simulator runs.
	defaultMaxLogEntries = 100
)

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
	fs.DurationVar(&c.latency, "latency", defaultLatency, "round trip added to every licensing, Graph and authority call")
	fs.DurationVar(&c.jitter, "latency-jitter", defaultJitter, "uniform jitter (±) around --latency")
	fs.Float64Var(&c.throttle.Rate, "throttle-rate", defaultThrottleRate, "requests per second per tenant, app and service before 429 (0 = no throttling)")
	fs.IntVar(&c.throttle.Burst, "throttle-burst", defaultThrottleBurst, "token bucket size per tenant, app and service")
	fs.Float64Var(&c.chaos.ErrorRate, "error-rate", 0, "share of calls answered 500, 502, 503 or 504 at random (0.2 = 20%)")
	fs.Float64Var(&c.chaos.DropRate, "drop-rate", 0, "share of calls whose connection is closed without an answer")
	fs.StringVar(&c.chaos.RetryAfter, "error-retry-after", "", "Retry-After sent with the random 503s (\"\" = none)")
	fs.Func("chaos-endpoints", "comma-separated services --error-rate and --drop-rate apply to (authority, licensing, graph; default all)", func(v string) error {
		c.chaos.Endpoints = strings.Split(v, ",")
		return nil
	})
	fs.DurationVar(&c.lifecycle.Warning, "lifecycle-warning", m365sim.DefaultWarningPeriod, "how long a cancelled subscription stays Warning (users keep licences)")
	fs.DurationVar(&c.lifecycle.Suspended, "lifecycle-suspended", m365sim.DefaultSuspendedPeriod, "how long it then stays Suspended before Deleted")
	fs.IntVar(&c.sinkPort, "leak-sink-port", 0, "port of the plain-HTTP leak sink redirect faults point at (0 = any)")
	fs.DurationVar(&c.inFlight, "in-flight", 0, "a request within this long after a Retry-After answer to its tenant is taken as already sent and not counted early")
	fs.IntVar(&c.maxLogEntries, "max-log-entries", defaultMaxLogEntries, "request log entries kept per tenant (counters keep counting)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if c.tenants < 0 {
		return c, errors.New("--tenants must not be negative")
	}
	if c.latency < 0 || c.jitter < 0 || c.throttle.Rate < 0 || c.throttle.Burst < 0 || c.maxLogEntries < 0 || c.inFlight < 0 {
		return c, errors.New("--latency, --latency-jitter, --throttle-rate, --throttle-burst, --max-log-entries and --in-flight must not be negative")
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
		DeviceCodeInterval: c.deviceInterval, DeviceCodeLifetime: c.deviceLife,
		Latency: c.latency, LatencyJitter: c.jitter, Throttle: c.throttle, Chaos: c.chaos, Lifecycle: c.lifecycle,
		LeakSinkPort: c.sinkPort, MaxLogEntries: c.maxLogEntries, InFlight: c.inFlight})
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
	fmt.Fprintf(out, "m365sim listening\n  authority: %s\n  licensing: %s\n  graph:     %s\n  admin:     %s/_sim/\n  leak sink: %s\n",
		info.AuthorityHost, info.Licensing, info.Graph, info.AdminURL, info.LeakSink)
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
