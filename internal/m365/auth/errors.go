package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// Entra's OAuth "error" values that mean the credential itself was refused:
// a person must fix the Secret, the app registration or the consent.
var refusedCredentialCodes = map[string]bool{
	"invalid_client":      true,
	"unauthorized_client": true,
	"invalid_grant":       true,
	"invalid_tenant":      true,
}

// AADSTS codes that Entra sends with error "invalid_request" although the
// credential or its federation is what is wrong: a person must act.
var refusedCredentialAADSTS = map[string]bool{
	"50027":  true, // the client assertion is not a valid JWT
	"70021":  true, // no matching federated identity record
	"700211": true, // ... for the assertion's issuer
	"700212": true, // ... for the assertion's audience
	"700213": true, // ... for the assertion's subject
	"700024": true, // the client assertion is outside its validity period
	"90002":  true, // tenant not found
}

// callSink collects, for one GetToken call, what azidentity's errors lose:
// the transport error (e.g. a gate refusal or a timeout), the assertion
// callback's error, and the secret strings that must never be shown.
type callSink struct {
	mu           sync.Mutex
	transportErr error
	assertionErr error
	secrets      []string
}

type sinkKey struct{}

// withSink returns ctx carrying a fresh sink that already knows secrets.
func withSink(ctx context.Context, secrets ...string) (context.Context, *callSink) {
	s := &callSink{}
	s.addSecret(secrets...)
	return context.WithValue(ctx, sinkKey{}, s), s
}

func sinkFrom(ctx context.Context) *callSink {
	s, _ := ctx.Value(sinkKey{}).(*callSink)
	return s
}

func (s *callSink) addSecret(secrets ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range secrets {
		if v != "" {
			s.secrets = append(s.secrets, v)
		}
	}
}

func (s *callSink) setTransportErr(err error) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transportErr = err
}

func (s *callSink) setAssertionErr(err error) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assertionErr = err
}

// secretList returns the secrets known so far.
func (s *callSink) secretList() []string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.secrets...)
}

// redact removes every known secret (and credential-shaped string) from msg.
func (s *callSink) redact(msg string) string {
	return m365.CleanText(msg, m365.MaxReasonLength, s.secretList()...)
}

// recordingTransport reports a failed round trip to the sink of the request's
// context before http.Client wraps the error.
type recordingTransport struct{ base http.RoundTripper }

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		sinkFrom(req.Context()).setTransportErr(err)
	}
	return resp, err
}

// tokenError maps what azidentity's GetToken returned to a typed error:
// an *m365.Error, or the context's error when the caller gave up.
func tokenError(ctx context.Context, err error, sink *callSink, now time.Time) error {
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) {
		return ctx.Err()
	}
	sink.mu.Lock()
	assertionErr, transportErr := sink.assertionErr, sink.transportErr
	sink.mu.Unlock()
	if assertionErr != nil {
		return sourceError("service account token", assertionErr)
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) && afe.RawResponse != nil {
		body, _ := runtime.Payload(afe.RawResponse)
		return responseError(afe.RawResponse, body, sink, now)
	}
	if transportErr != nil {
		return m365.FromTransport(opGetToken, transportErr)
	}
	if _, ok := m365.AsError(err); ok { // e.g. an answer beyond the size cap
		return m365.FromTransport(opGetToken, err)
	}
	if ctx.Err() != nil {
		return m365.FromTransport(opGetToken, ctx.Err())
	}
	return &m365.Error{Op: opGetToken, Kind: m365.Transient, Reason: sink.redact(firstLine(err.Error()))}
}

// responseError maps an error answer of Entra (token or metadata endpoint):
// 400/401 with invalid_client, unauthorized_client, invalid_grant or
// invalid_tenant → Unauthorized; 429 → Throttled with Retry-After; 5xx →
// Transient. Reason is the AADSTS description's first sentence (with its
// AADSTS code), cleaned and without any known secret (m365.FromResponse); a
// body that is not Entra's JSON (a proxy page, an echo of the form) is only
// described.
func responseError(resp *http.Response, body []byte, sink *callSink, now time.Time) *m365.Error {
	e := m365.FromResponse(opGetToken, resp, body, now, sink.secretList()...)
	if e.StatusCode == http.StatusBadRequest && refusesCredential(e.Code, e.Reason) {
		e.Kind = m365.Unauthorized
	}
	e.Reason = firstSentence(e.Reason)
	return e
}

// refusesCredential reports whether a 400 from Entra means the credential
// (secret, certificate, federated assertion, refresh token or tenant) was
// refused rather than the request being malformed.
func refusesCredential(code, reason string) bool {
	if refusedCredentialCodes[code] {
		return true
	}
	num, ok := strings.CutPrefix(reason, "AADSTS")
	if !ok {
		return false
	}
	num, _, _ = strings.Cut(num, ":")
	return code == "invalid_request" && refusedCredentialAADSTS[num]
}

// Unavailable marks err, a failure to read credential material (the
// service-account token, the refresh-token Secret), as one a person must fix:
// the source is missing, forbidden or refused the request. The credential then
// fails Unauthorized instead of Transient. The text of err is unchanged.
// The sources (in the controller, which knows Kubernetes) decide what to mark.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &unavailableError{err}
}

type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// IsUnavailable tells whether err (or an error it wraps) was marked Unavailable.
func IsUnavailable(err error) bool {
	var u *unavailableError
	return errors.As(err, &u)
}

// sourceError maps a failure to read credential material: one marked
// Unavailable, or a store without a token, is a user error (Unauthorized);
// anything else is Transient.
func sourceError(what string, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	kind := m365.Transient
	if IsUnavailable(err) || errors.Is(err, ErrNoRefreshToken) {
		kind = m365.Unauthorized
	}
	return &m365.Error{Op: opGetToken, Kind: kind, Code: "credential_unavailable", Reason: what, Err: err}
}

// firstSentence keeps the first line of s up to and including its first
// ". " (Entra descriptions go on with trace and correlation IDs).
func firstSentence(s string) string {
	s = firstLine(s)
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i+1]
	}
	return strings.TrimSpace(s)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}
