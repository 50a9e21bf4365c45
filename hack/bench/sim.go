package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	proc    *procs.Child
	info    m365sim.ReadyInfo
	admin   *m365sim.AdminClient
	args    []string
	traffic m365sim.Traffic
}

// startSimulator writes the fleet file, starts bin with it, the given
// latency and extra flags, and waits for its ready file.
func startSimulator(ctx context.Context, bin, dir string, f *fleet, latency time.Duration, extra []string) (*simulator, error) {
	tenantsFile := filepath.Join(dir, "tenants.json")
	b, err := json.Marshal(f.fleetFile())
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(tenantsFile, b, 0o600); err != nil {
		return nil, err
	}
	ca, ready := filepath.Join(dir, "sim-ca.pem"), filepath.Join(dir, "sim-ready.json")
	args := append([]string{"--tenants-file=" + tenantsFile, "--ca-file=" + ca, "--ready-file=" + ready, "--latency=" + latency.String()}, extra...)
	s := &simulator{args: args}
	if s.proc, err = procs.Start("m365sim", bin, args, nil, filepath.Join(dir, "m365sim.log")); err != nil {
		return nil, err
	}
	info, err := s.proc.WaitForFile(ctx, ready, simReadyTimeout)
	if err == nil {
		err = json.Unmarshal(info, &s.info)
	}
	if err == nil {
		s.admin, err = m365sim.NewAdminClient(s.info.AdminURL, ca, simCallTimeout)
	}
	if err == nil {
		s.traffic, err = s.admin.Traffic(ctx)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("simulator: %w", err), s.proc.Stop())
	}
	return s, nil
}

// describe is the simulator's command line and traffic model for the report.
func (s *simulator) describe(bin string) string {
	return fmt.Sprintf("%s %s (latency %s ± %s, throttling %.0f/s burst %d per tenant, app and service)", bin, strings.Join(s.args, " "),
		s.traffic.Latency, s.traffic.LatencyJitter, s.traffic.Throttle.Rate, s.traffic.Throttle.Burst)
}
