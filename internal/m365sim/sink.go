package m365sim

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LocationSink is the Location of a redirect fault that points at the leak
// sink with the request's own path and query.
const LocationSink = "sink"

// credentialFields are the form fields that carry a credential to Entra.
var credentialFields = []string{"client_secret", "client_assertion", "refresh_token", "device_code", "code", "password", "assertion"}

// LeakedRequest is a request that reached the leak sink: something a client
// sent to a host it was redirected (or paged) to. Values are never kept, only
// whether a credential was there.
type LeakedRequest struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Host   string    `json:"host"`
	Path   string    `json:"path"`
	Query  string    `json:"query,omitempty"`
	// Authorization: the request carried an Authorization header.
	Authorization bool `json:"authorization"`
	// CredentialFields are the credential form fields the body carried
	// (client_secret, client_assertion, refresh_token, ...).
	CredentialFields []string `json:"credentialFields"`
}

// LeakSink describes the sink and what reached it.
type LeakSink struct {
	URL      string          `json:"url"`
	Requests []LeakedRequest `json:"requests"`
}

// leakSink is a plain-HTTP listener on the simulator's host that records
// every request and answers 200 {}.
type leakSink struct {
	mu       sync.Mutex
	origin   string
	port     int
	requests []LeakedRequest
	srv      *http.Server
}

// startLeakSink listens on Options.Addr:LeakSinkPort.
func (s *Server) startLeakSink() error {
	ln, err := net.Listen("tcp", net.JoinHostPort(s.opts.Addr, strconv.Itoa(s.opts.LeakSinkPort)))
	if err != nil {
		return fmt.Errorf("listening for the leak sink: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	s.sink.mu.Lock()
	s.sink.origin, s.sink.port = "http://"+net.JoinHostPort(s.opts.Addr, strconv.Itoa(port)), port
	s.sink.srv = &http.Server{Handler: http.HandlerFunc(s.serveSink), ReadHeaderTimeout: 10 * time.Second}
	srv := s.sink.srv
	s.sink.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return nil
}

func (k *leakSink) close() {
	k.mu.Lock()
	srv := k.srv
	k.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (s *Server) serveSink(w http.ResponseWriter, r *http.Request) {
	e := LeakedRequest{Time: s.now(), Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery,
		Authorization: r.Header.Get("Authorization") != "", CredentialFields: []string{}}
	if body, err := readLimited(r.Body); err == nil {
		if form, err := url.ParseQuery(string(body)); err == nil {
			for _, f := range credentialFields {
				if form.Has(f) {
					e.CredentialFields = append(e.CredentialFields, f)
				}
			}
		}
	}
	k := &s.sink
	k.mu.Lock()
	if len(k.requests) >= MaxLogEntries {
		k.requests = slices.Delete(k.requests, 0, MaxLogEntries/10)
	}
	k.requests = append(k.requests, e)
	k.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{})
}

// LeakSinkURL is the sink's origin, http://<addr>:<port> ("" before Start).
func (s *Server) LeakSinkURL() string {
	s.sink.mu.Lock()
	defer s.sink.mu.Unlock()
	return s.sink.origin
}

// LeakedRequests returns every request that reached the sink, oldest first.
func (s *Server) LeakedRequests() []LeakedRequest {
	s.sink.mu.Lock()
	defer s.sink.mu.Unlock()
	return slices.Clone(s.sink.requests)
}

// ResetLeakSink forgets what reached the sink.
func (s *Server) ResetLeakSink() {
	s.sink.mu.Lock()
	defer s.sink.mu.Unlock()
	s.sink.requests = nil
}

// expandLocation fills a fault's Location template for request r.
func (s *Server) expandLocation(loc string, r *http.Request) string {
	if loc == LocationSink {
		loc = "{sink}{requestURI}"
	}
	return s.expand(loc, hostOf(r), r.URL.RequestURI())
}

// expand replaces {sink}, {sinkPort}, {host} and {requestURI} in loc.
func (s *Server) expand(loc, host, requestURI string) string {
	s.sink.mu.Lock()
	origin, port := s.sink.origin, s.sink.port
	s.sink.mu.Unlock()
	return strings.NewReplacer("{sink}", origin, "{sinkPort}", strconv.Itoa(port), "{host}", host,
		"{requestURI}", requestURI).Replace(loc)
}

// hostOf is the host name the client used, without the port.
func hostOf(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		return h
	}
	return r.Host
}

func isRedirect(status int) bool { return status >= 300 && status < 400 }

// writeRedirect answers a redirect fault as a gateway does: Location and a
// short HTML body.
func (s *Server) writeRedirect(w http.ResponseWriter, r *http.Request, f Fault) {
	loc := s.expandLocation(f.Location, r)
	w.Header().Set("Location", loc)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(f.Status)
	_, _ = fmt.Fprintf(w, "<html><head><title>Object moved</title></head><body><h2>Object moved to <a href=%q>here</a>.</h2></body></html>\n", loc)
}

func (s *Server) adminGetLeakSink(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, LeakSink{URL: s.LeakSinkURL(), Requests: append([]LeakedRequest{}, s.LeakedRequests()...)})
}
