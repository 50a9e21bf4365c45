package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
	"github.com/tenantpolicy/purchase-policy-controller/internal/procs"
)

// Timeouts of the simulator.
const (
	simReadyTimeout = 5 * time.Minute // 10,000 tenants take a while to provision
	simCallTimeout  = 30 * time.Second
)

// adminWorkers bounds the harness's concurrent admin API calls.
const adminWorkers = 8

// benchNamespace holds the fleet's policies and the partner's Secret.
const (
	benchNamespace = "bench"
	partnerSecret  = "partner-app"
	secretKey      = "clientSecret"
)

// fleet is the simulated partner: one app registration with one secret,
// consented in every customer tenant.
type fleet struct {
	tenants  []string
	clientID string
	secret   string
}

// newFleet makes n tenants with deterministic IDs and one partner app.
func newFleet(n int) (*fleet, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	f := &fleet{clientID: benchGUID("partner-app"), secret: "bench~" + hex.EncodeToString(b)}
	for i := range n {
		f.tenants = append(f.tenants, benchGUID(fmt.Sprintf("tenant-%d", i)))
	}
	return f, nil
}

func benchGUID(name string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://bench.tenantpolicy.io/"+name)).String()
}

// fleetFile is the simulator's --tenants-file for the fleet: every tenant
// has Microsoft's default products, the sample directory and the partner app.
func (f *fleet) fleetFile() m365sim.FleetFile {
	var ff m365sim.FleetFile
	for i, id := range f.tenants {
		ff.Tenants = append(ff.Tenants, m365sim.FleetTenant{ID: id, Name: fmt.Sprintf("Bench %05d", i), SampleDirectory: true,
			Apps: []m365sim.AppRequest{{ClientID: f.clientID, Secret: f.secret, Permissions: m365sim.AllPermissions}}})
	}
	return ff
}

// simulator is m365sim running as its own process.
type simulator struct {
	proc  *procs.Child
	info  m365sim.ReadyInfo
	admin *m365sim.AdminClient
	args  []string
	// fleetCounts is false when the binary has no aggregate request log
	// (GET /_sim/requests): the harness then sums the tenants' logs.
	fleetCounts bool
	tenants     []string
}

// startSimulator writes the fleet file and starts bin with it, the given
// latency and extra flags, and waits for its ready file.
func startSimulator(ctx context.Context, bin, dir string, f *fleet, latency time.Duration, extra []string) (*simulator, []string, error) {
	var notes []string
	tenantsFile := filepath.Join(dir, "tenants.json")
	b, err := json.Marshal(f.fleetFile())
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(tenantsFile, b, 0o600); err != nil {
		return nil, nil, err
	}
	flags, err := flagsOf(bin)
	if err != nil {
		return nil, nil, err
	}
	ca, ready := filepath.Join(dir, "sim-ca.pem"), filepath.Join(dir, "sim-ready.json")
	args := []string{"--tenants-file=" + tenantsFile, "--ca-file=" + ca, "--ready-file=" + ready}
	if _, ok := flags["latency"]; ok {
		args = append(args, "--latency="+latency.String())
	} else {
		notes = append(notes, "the simulator has no --latency flag: it answers at once (no latency model)")
	}
	if _, ok := flags["throttle-rate"]; !ok {
		notes = append(notes, "the simulator has no --throttle-rate flag: no Microsoft throttling")
	}
	args = append(args, extra...)
	s := &simulator{args: args, tenants: f.tenants}
	if s.proc, err = procs.Start("m365sim", bin, args, nil, filepath.Join(dir, "m365sim.log")); err != nil {
		return nil, nil, err
	}
	info, err := s.proc.WaitForFile(ctx, ready, simReadyTimeout)
	if err == nil {
		err = json.Unmarshal(info, &s.info)
	}
	if err == nil {
		s.admin, err = m365sim.NewAdminClient(s.info.AdminURL, ca, simCallTimeout)
	}
	if err != nil {
		_ = s.proc.Stop()
		return nil, nil, fmt.Errorf("simulator: %w", err)
	}
	_, err = s.admin.FleetRequests(ctx)
	s.fleetCounts = err == nil
	if !s.fleetCounts {
		notes = append(notes, "the simulator has no GET /_sim/requests: the harness sums every tenant's request log")
	}
	return s, notes, nil
}

// msRequests is what the fleet sent to the simulated Microsoft services.
type msRequests struct {
	Counts    map[string]int `json:"counts"`
	Early     int            `json:"earlyRequests"`
	Throttled int            `json:"throttled"`
}

// requests returns the fleet's request counts since the last reset.
func (s *simulator) requests(ctx context.Context) (msRequests, error) {
	if s.fleetCounts {
		r, err := s.admin.FleetRequests(ctx)
		return msRequests{Counts: r.Counts, Early: r.EarlyRequests, Throttled: r.Throttled}, err
	}
	sum := msRequests{Counts: map[string]int{}}
	var mu sync.Mutex
	err := s.eachTenant(ctx, func(ctx context.Context, id string) error {
		log, err := s.admin.Requests(ctx, id)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for k, v := range log.Counts {
			sum.Counts[k] += v
		}
		sum.Early += log.EarlyRequests
		for _, e := range log.Entries {
			if e.Status == http.StatusTooManyRequests {
				sum.Throttled++
			}
		}
		return nil
	})
	return sum, err
}

// resetRequests empties the request logs.
func (s *simulator) resetRequests(ctx context.Context) error {
	if s.fleetCounts {
		return s.admin.ResetFleetRequests(ctx)
	}
	return s.eachTenant(ctx, s.admin.ResetRequests)
}

// eachTenant runs fn for every tenant, adminWorkers at a time.
func (s *simulator) eachTenant(ctx context.Context, fn func(context.Context, string) error) error {
	return parallel(ctx, s.tenants, adminWorkers, fn)
}

// describe is the simulator's command line for the report.
func (s *simulator) describe(bin string) string {
	return bin + " " + strings.Join(s.args, " ")
}
