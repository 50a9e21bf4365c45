// Package m365sim is an in-memory Microsoft 365 tenant simulator: an Entra
// token endpoint with OIDC metadata, the self-service purchase policy
// ("licensing") API and the Microsoft Graph subset the controller reads, for
// thousands of tenants at once. It serves TLS from a CA it generates, so the
// controller's real clients (azidentity, msgraph-sdk-go, net/http) talk to it
// exactly as they would talk to Microsoft. An admin API under /_sim/ acts like
// a person in the admin center and injects faults.
//
// Wire formats follow docs/microsoft-api.md.
//
// It decides how the simulated Microsoft answers and misbehaves (faults,
// throttling, lifecycle). It must not import controllers/ or the Microsoft
// clients, nor be lenient where Microsoft is strict: a client that passes against it
// must be one Microsoft accepts.
package m365sim

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// Endpoint names used in faults, request counters and log entries.
const (
	EndpointAuthority = "authority"
	EndpointLicensing = "licensing"
	EndpointGraph     = "graph"
)

// Defaults applied by New.
const (
	DefaultAddr          = "127.0.0.1"
	DefaultTokenLifetime = time.Hour
	DefaultPageSize      = 100
	// MaxLogEntries bounds the per-tenant request log; Counts keep counting.
	MaxLogEntries = 10000
)

// Options configure a Server.
type Options struct {
	// Addr is the host the listeners bind to, default "127.0.0.1".
	Addr string
	// Ports are fixed ports for authority, licensing and graph (0 = any).
	Ports [3]int
	// CAFile, when set, receives the CA certificate PEM at Start.
	CAFile string
	// TokenLifetime is the lifetime of issued access tokens, default 1h.
	TokenLifetime time.Duration
	// PageSize is the Graph page size, default 100.
	PageSize int
	// Seed makes generated IDs (GUIDs) deterministic.
	Seed int64
	// Now is the clock, default time.Now.
	Now func() time.Time
	// DeviceCodeInterval is the device code polling interval (rounded up to
	// whole seconds on the wire), default 5s; DeviceCodeLifetime is how long
	// a device code lives, default 15m.
	DeviceCodeInterval, DeviceCodeLifetime time.Duration

	// Latency delays every licensing, Graph and authority call by Latency ±
	// LatencyJitter (uniform), a round trip to Microsoft (default 0).
	Latency, LatencyJitter time.Duration
	// Throttle is Microsoft-style throttling per tenant, app and endpoint
	// (Rate 0 = off).
	Throttle Throttle
	// Chaos fails a share of the calls at random (default off).
	Chaos Chaos
	// Lifecycle is how long an ending subscription stays Warning and
	// Suspended (defaults: 30 and 90 days).
	Lifecycle Lifecycle
	// LeakSinkPort is the port of the plain-HTTP leak sink (0 = any).
	LeakSinkPort int
	// MaxLogEntries bounds each tenant's request log, default MaxLogEntries.
	MaxLogEntries int
	// InFlight is how long after a Retry-After answer a request of the same
	// tenant is still taken as one already on its way (sent by another of the
	// client's goroutines before the answer reached it, or its handler started
	// late on a loaded machine) and not counted early. Default 0: every
	// request before the deadline is early.
	InFlight time.Duration
}

// Server is the simulator. All methods are safe for concurrent use.
type Server struct {
	opts Options
	now  func() time.Time

	caPEM      []byte
	caPool     *x509.CertPool
	serverCert tls.Certificate
	signingKey *rsa.PrivateKey // signs ID tokens; published at the keys endpoint
	keyID      string
	accessKey  *ecdsa.PrivateKey // signs access tokens, which only the simulator reads
	verified   verifiedTokens    // access tokens whose signature checked out

	idMu sync.Mutex
	rng  *rand.Rand

	mu      sync.RWMutex
	tenants map[string]*tenant // key: lower-case tenant ID
	order   []string           // tenant IDs in creation order

	origins   [3]string // authority, licensing, graph; set by Start
	servers   []*http.Server
	listeners []net.Listener
	handlers  [3]http.Handler // authority, licensing, graph

	traffic      atomic.Pointer[trafficState] // latency and throttling, changeable at run time
	unattributed atomic.Int64                 // requests refused before a tenant was known
	sink         leakSink
}

// New prepares a simulator: it generates a CA, a serving certificate for
// 127.0.0.1, ::1 and localhost, and the token signing key. Nothing listens
// until Start.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = DefaultTokenLifetime
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DeviceCodeInterval <= 0 {
		opts.DeviceCodeInterval = DefaultDeviceCodeInterval
	}
	if opts.DeviceCodeLifetime <= 0 {
		opts.DeviceCodeLifetime = DefaultDeviceCodeLifetime
	}
	if opts.MaxLogEntries <= 0 {
		opts.MaxLogEntries = MaxLogEntries
	}
	opts.Lifecycle = opts.Lifecycle.withDefaults()
	s := &Server{
		opts:    opts,
		now:     opts.Now,
		rng:     rand.New(rand.NewSource(opts.Seed)),
		tenants: map[string]*tenant{},
	}
	if err := s.initCrypto(); err != nil {
		return nil, err
	}
	// Until Start, origins point at the default ports so Handler(endpoint) alone
	// (e.g. in httptest) still produces well-formed URLs.
	for i := range s.origins {
		s.origins[i] = "https://" + net.JoinHostPort(opts.Addr, "443")
	}
	if err := opts.Chaos.validate(); err != nil {
		return nil, err
	}
	s.setTraffic(Traffic{Latency: opts.Latency, LatencyJitter: opts.LatencyJitter, Throttle: opts.Throttle, Chaos: opts.Chaos})
	s.handlers = s.routes()
	return s, nil
}

// newGUID returns the next deterministic GUID of this server's seed.
func (s *Server) newGUID() string {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	id, err := uuid.NewRandomFromReader(s.rng)
	if err != nil { // math/rand never fails
		panic(err)
	}
	return id.String()
}

// Start listens on three ports (authority, licensing, graph), each serving
// its own service (and the admin API), with TLS in the background. It writes
// the CA to Options.CAFile when set.
func (s *Server) Start() error {
	if s.opts.CAFile != "" {
		if err := os.WriteFile(s.opts.CAFile, s.caPEM, 0o644); err != nil {
			return fmt.Errorf("writing CA file: %w", err)
		}
	}
	var lns []net.Listener
	for i, p := range s.opts.Ports {
		ln, err := net.Listen("tcp", net.JoinHostPort(s.opts.Addr, strconv.Itoa(p)))
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return fmt.Errorf("listening for %s: %w", listenerEndpoints[i], err)
		}
		lns = append(lns, ln)
	}
	s.mu.Lock()
	for i, ln := range lns {
		port := ln.Addr().(*net.TCPAddr).Port
		s.origins[i] = "https://" + net.JoinHostPort(s.opts.Addr, strconv.Itoa(port))
	}
	s.listeners = lns
	s.mu.Unlock()
	if err := s.startLeakSink(); err != nil {
		for _, l := range lns {
			_ = l.Close()
		}
		return err
	}
	for i, ln := range lns {
		srv := &http.Server{
			Handler:           s.handlers[i],
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{s.serverCert}, MinVersion: tls.VersionTLS12},
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          nil,
		}
		s.servers = append(s.servers, srv)
		go func(srv *http.Server, ln net.Listener) {
			_ = srv.ServeTLS(ln, "", "")
		}(srv, ln)
	}
	return nil
}

// Close stops the listeners and drops open connections at once.
func (s *Server) Close() {
	for _, srv := range s.servers {
		_ = srv.Close()
	}
	s.sink.close()
}

// Endpoints returns the three origins, "https://127.0.0.1:<port>".
func (s *Server) Endpoints() m365.Endpoints {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return m365.Endpoints{AuthorityHost: s.origins[0], Licensing: s.origins[1], Graph: s.origins[2]}
}

// AdminURL returns the origin of the admin API (the licensing origin); routes
// live under /_sim/.
func (s *Server) AdminURL() string { return s.Endpoints().Licensing }

// CAPEM returns the CA certificate in PEM form.
func (s *Server) CAPEM() []byte { return append([]byte(nil), s.caPEM...) }

// HTTPClient returns a client that trusts the simulator's CA.
func (s *Server) HTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: s.caPool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// Handler returns the handler of one listener: EndpointAuthority,
// EndpointLicensing or EndpointGraph (nil for another name).
func (s *Server) Handler(endpoint string) http.Handler {
	for i, ep := range listenerEndpoints {
		if ep == endpoint {
			return s.handlers[i]
		}
	}
	return nil
}

// Errors returned by the Go API; the admin HTTP API maps them to statuses.
var (
	ErrTenantNotFound       = errors.New("tenant not found")
	ErrTenantExists         = errors.New("tenant already exists")
	ErrProductNotFound      = errors.New("product not found")
	ErrProductExists        = errors.New("product already exists")
	ErrSubscriptionNotFound = errors.New("subscription not found")
	ErrInvalid              = errors.New("invalid request")
	// ErrNotEnoughSeats: a takeover needs a free organisation seat per user.
	ErrNotEnoughSeats = errors.New("not enough free seats in an organisation subscription of that SKU")
	// ErrPurchaseBlocked: the tenant's policy forbids this self-service purchase.
	ErrPurchaseBlocked = errors.New("self-service purchase blocked by the tenant's policy")
	// ErrSubscriptionDeleted: the subscription was already cancelled or taken over.
	ErrSubscriptionDeleted = errors.New("subscription is deleted")
)

// readLimited reads at most 1 MiB of a request body.
func readLimited(r io.Reader) ([]byte, error) { return io.ReadAll(io.LimitReader(r, 1<<20)) }

// lower normalises tenant IDs for map keys.
func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
