package m365sim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// adminPrefix is the path prefix of the admin API; Microsoft does not use it.
const adminPrefix = "/_sim/"

// call is what the pipeline learned about a request before its handler runs.
type call struct {
	endpoint string
	tenant   *tenant
	claims   *accessClaims // licensing and graph only
	caller   string        // client ID, for the request log
	fault    *Fault        // a matched answer fault the handlers apply
	// bucketThrottled: the app's throttling bucket answered 429.
	bucketThrottled bool
}

type callKey struct{}

// callOf returns the request's call (set by the pipeline).
func callOf(r *http.Request) *call {
	c, _ := r.Context().Value(callKey{}).(*call)
	return c
}

// isAdminPath reports whether a path belongs to the admin API, which every
// listener serves.
func isAdminPath(path string) bool { return strings.HasPrefix(path, adminPrefix) || path == "/_sim" }

// listenerEndpoints names the listeners in the order of Options.Ports.
var listenerEndpoints = [3]string{EndpointAuthority, EndpointLicensing, EndpointGraph}

// routes builds one handler per listener (authority, licensing, graph). Each
// serves only its own service, as separate Microsoft hosts do: a licensing
// path on the Graph listener is an unknown Graph resource, and vice versa.
// The admin API is reachable on every listener.
func (s *Server) routes() [3]http.Handler {
	admin := s.adminMux()
	authority, licensing, graph := s.authorityMux(), s.licensingMux(), s.strictGraph(s.graphMux())
	serve := map[string]func(http.ResponseWriter, *http.Request){
		EndpointAuthority: func(w http.ResponseWriter, r *http.Request) { s.serveAuthority(w, r, authority) },
		EndpointLicensing: func(w http.ResponseWriter, r *http.Request) { s.serveResource(w, r, EndpointLicensing, licensing) },
		EndpointGraph:     func(w http.ResponseWriter, r *http.Request) { s.serveResource(w, r, EndpointGraph, graph) },
	}
	var out [3]http.Handler
	for i, ep := range listenerEndpoints {
		service := serve[ep]
		out[i] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isAdminPath(r.URL.Path) {
				admin.ServeHTTP(w, r)
				return
			}
			service(w, r)
		})
	}
	return out
}

// serveAuthority resolves the tenant from the first path segment, then logs,
// applies faults and serves.
func (s *Server) serveAuthority(w http.ResponseWriter, r *http.Request, mux http.Handler) {
	s.stampHeaders(w, r, EndpointAuthority)
	seg, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	t, err := s.lookup(seg)
	if err != nil {
		s.unattributedCall(r)
		s.writeEntraError(w, entraErr(http.StatusBadRequest, "invalid_request", 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", clip(seg)))
		return
	}
	c := &call{endpoint: EndpointAuthority, tenant: t}
	if r.Method == http.MethodPost {
		_ = r.ParseForm()
		c.caller = r.PostForm.Get("client_id")
	}
	s.serveLogged(w, r, c, func(rec *recorder, r *http.Request) { mux.ServeHTTP(rec, r) })
}

// serveResource authenticates a licensing or Graph request with its bearer
// token (the token's tid names the tenant), then logs, applies faults, checks
// lifetime and audience and serves.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, ep string, mux http.Handler) {
	st := styleOf(ep)
	s.stampHeaders(w, r, ep)
	claims, err := s.parseAccessToken(r)
	if err != nil {
		s.unattributedCall(r)
		st.unauthorized(w, err.Error())
		return
	}
	t, err := s.lookup(claims.TenantID)
	if err != nil {
		s.unattributedCall(r)
		st.unauthorized(w, "The tenant of the access token does not exist.")
		return
	}
	c := &call{endpoint: ep, tenant: t, claims: claims, caller: claims.AppID}
	s.serveLogged(w, r, c, func(rec *recorder, r *http.Request) {
		resource := map[string]string{EndpointLicensing: ResourceLicensing, EndpointGraph: ResourceGraph}[ep]
		switch {
		case s.expired(claims):
			st.unauthorized(rec, errExpiredToken.Error())
		case !claims.forAudience(resource):
			st.unauthorized(rec, "Access token validation failure. Invalid audience.")
		default:
			mux.ServeHTTP(rec, r)
		}
	})
}

// serveLogged records the request in the tenant's log (with early-request
// detection at arrival), waits the round trip, throttles, applies a matching
// fault, or calls serve (through an answer fault).
func (s *Server) serveLogged(w http.ResponseWriter, r *http.Request, c *call, serve func(*recorder, *http.Request)) {
	rec := &recorder{ResponseWriter: w}
	entry := c.tenant.begin(s.now(), c, r)
	defer func() { c.tenant.finish(s.now(), entry, c, rec) }()
	r = r.WithContext(context.WithValue(r.Context(), callKey{}, c))
	if !s.admit(rec, r, c) {
		return
	}
	if f, ok := c.tenant.matchFault(c.endpoint, r); ok {
		if done := s.applyFault(rec, r, c.endpoint, f); done {
			return
		}
		if f.Answer != "" {
			c.fault = &f
		}
	}
	s.serveAnswer(rec, r, c, serve)
}

// recorder remembers the status a handler wrote.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// writeJSON writes v as a JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func jwtErrIs(err, target error) bool { return errors.Is(err, target) }
