package m365sim

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// correlationHeader is echoed by the licensing API.
const correlationHeader = "x-ms-correlation-id"

// Fault makes the simulator misbehave for one tenant's requests to one
// endpoint.
type Fault struct {
	// Endpoint is "authority", "licensing" or "graph".
	Endpoint string `json:"endpoint"`
	// Method limits the fault to one HTTP method ("" = any).
	Method string `json:"method,omitempty"`
	// PathPrefix limits the fault to paths with this prefix ("" = any).
	PathPrefix string `json:"pathPrefix,omitempty"`
	// Status is answered instead of the real response (0 = serve normally
	// after Latency).
	Status int `json:"status,omitempty"`
	// RetryAfter is sent as the Retry-After header (seconds or an HTTP date).
	RetryAfter string `json:"retryAfter,omitempty"`
	// Body replaces the generated error body (in the service's error style).
	Body string `json:"body,omitempty"`
	// Latency delays the answer.
	Latency time.Duration `json:"latency,omitempty"`
	// Drop closes the connection without an answer.
	Drop bool `json:"drop,omitempty"`
	// Count is how many requests the fault hits (0 = until cleared).
	Count int `json:"count,omitempty"`

	// Location is sent with a 3xx Status (default "sink") and names the
	// foreign origin of AnswerCrossOriginNextLink. "sink" stands for
	// "{sink}{requestURI}"; the placeholders {sink} (the leak sink's origin,
	// http://127.0.0.1:<port>), {sinkPort}, {host} (the host the client
	// used, without port) and {requestURI} (path and query) are expanded.
	Location string `json:"location,omitempty"`
	// Answer changes a served answer instead of replacing it (see the
	// Answer* constants); AnswerProxyHTML and AnswerEchoHeaders shape the
	// body of Status instead.
	Answer string `json:"answer,omitempty"`
	// N parameterises Answer: items dropped, nulls inserted, items repeated
	// or added, the length of a long name, the size of an oversized body.
	N int `json:"n,omitempty"`
	// ItemID names the item AnswerShortPage drops or AnswerLongName renames
	// ("id" in Graph, "productId" in licensing).
	ItemID string `json:"itemId,omitempty"`
	// Fields are the properties AnswerMissingFields removes (AnswerLongName:
	// the property to lengthen).
	Fields []string `json:"fields,omitempty"`
	// StaleFor is how long reads keep showing the old value after a PUT
	// (AnswerStaleReads).
	StaleFor time.Duration `json:"staleFor,omitempty"`
}

type faultState struct {
	Fault
	remaining int // only when Count > 0
}

// InjectFault adds a fault for a tenant's requests.
func (s *Server) InjectFault(tenantID string, f Fault) error {
	if !slices.Contains([]string{EndpointAuthority, EndpointLicensing, EndpointGraph}, f.Endpoint) {
		return fmt.Errorf("%w: fault endpoint %q (want authority, licensing or graph)", ErrInvalid, f.Endpoint)
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		return fmt.Errorf("%w: fault status %d", ErrInvalid, f.Status)
	}
	if f.Count < 0 || f.Latency < 0 || f.N < 0 || f.StaleFor < 0 {
		return fmt.Errorf("%w: negative count, latency, n or staleFor", ErrInvalid)
	}
	if err := validateAnswer(f); err != nil {
		return err
	}
	if isRedirect(f.Status) && f.Location == "" {
		f.Location = LocationSink
	}
	return s.withTenant(tenantID, func(t *tenant) error {
		t.faults = append(t.faults, &faultState{Fault: f, remaining: f.Count})
		return nil
	})
}

// ClearFaults removes every fault of a tenant.
func (s *Server) ClearFaults(tenantID string) {
	_ = s.withTenant(tenantID, func(t *tenant) error { t.faults = nil; return nil })
}

// matchFault returns the first fault matching the request and uses up one of
// its hits.
func (t *tenant) matchFault(ep string, r *http.Request) (Fault, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, f := range t.faults {
		if f.Endpoint != ep || (f.Method != "" && !strings.EqualFold(f.Method, r.Method)) || !strings.HasPrefix(r.URL.Path, f.PathPrefix) ||
			!answerApplies(f.Answer, r.Method) {
			continue
		}
		if f.Count > 0 {
			f.remaining--
			if f.remaining <= 0 {
				t.faults = slices.Delete(t.faults, i, i+1)
			}
		}
		return f.Fault, true
	}
	return Fault{}, false
}

// applyFault waits the fault's latency, then drops the connection or answers
// its status. It reports whether the request is finished.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, ep string, f Fault) bool {
	if f.Latency > 0 {
		if err := sleepCtx(r.Context(), f.Latency); err != nil {
			return true // the client gave up
		}
	}
	if f.Drop {
		panic(http.ErrAbortHandler) // net/http closes the connection without an answer
	}
	if f.Status == 0 {
		return false
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	switch {
	case isRedirect(f.Status):
		s.writeRedirect(w, r, f)
		return true
	case f.Answer == AnswerProxyHTML || f.Answer == AnswerEchoHeaders:
		writeProxyPage(w, r, f)
		return true
	}
	if f.Body != "" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(f.Body))
		return true
	}
	styleOf(ep).write(w, f.Status, codeForStatus(ep, f.Status), faultMessage(f, s.now()))
	return true
}

func faultMessage(f Fault, now time.Time) string {
	if f.Status == http.StatusTooManyRequests || f.Status == http.StatusServiceUnavailable {
		if until, ok := retryAfterDeadline(f.RetryAfter, now); ok {
			return fmt.Sprintf("Too many requests. Rate limit is exceeded. Try again in %d seconds.", int64(max(0, until.Sub(now).Seconds())))
		}
		return "Too many requests. Rate limit is exceeded."
	}
	return "Injected fault: " + http.StatusText(f.Status) + "."
}

// codeForStatus names an error code for a status in the endpoint's style.
func codeForStatus(ep string, status int) string {
	switch status {
	case http.StatusTooManyRequests:
		if ep == EndpointAuthority {
			return "temporarily_unavailable"
		}
		return "TooManyRequests"
	case http.StatusUnauthorized:
		if ep == EndpointAuthority {
			return "invalid_client"
		}
		return "InvalidAuthenticationToken"
	case http.StatusForbidden:
		if ep == EndpointGraph {
			return "Authorization_RequestDenied"
		}
		return "Forbidden"
	}
	if ep == EndpointAuthority {
		if status >= 500 {
			return "temporarily_unavailable"
		}
		return "invalid_request"
	}
	return strings.ReplaceAll(http.StatusText(status), " ", "")
}

// errStyle writes errors the way one of the services does.
type errStyle string

func styleOf(ep string) errStyle { return errStyle(ep) }

// write answers status with code and message in the service's error format:
// licensing {"errorCode","reason"}, Graph {"error":{"code","message",...}},
// Entra {"error","error_description","error_codes",...}.
func (st errStyle) write(w http.ResponseWriter, status int, code, msg string) {
	switch string(st) {
	case EndpointLicensing:
		writeJSON(w, status, map[string]any{"errorCode": code, "reason": msg})
	case EndpointGraph:
		writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg, "innerError": graphInnerError(w)}})
	default:
		aadsts := 90100
		if status == http.StatusTooManyRequests || status >= 500 {
			aadsts = 50196
		}
		writeJSON(w, status, map[string]any{"error": code, "error_description": "AADSTS" + strconv.Itoa(aadsts) + ": " + msg, "error_codes": []int{aadsts}})
	}
}

func (st errStyle) unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+msg+`"`)
	st.write(w, http.StatusUnauthorized, "InvalidAuthenticationToken", msg)
}

func (st errStyle) forbidden(w http.ResponseWriter, msg string) {
	code := "Forbidden"
	if st == EndpointGraph {
		code = "Authorization_RequestDenied"
	}
	st.write(w, http.StatusForbidden, code, msg)
}
