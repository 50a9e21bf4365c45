// Package m365test holds test helpers shared by the Microsoft clients' tests:
// Target, a server no client may ever reach (a redirect's or a nextLink's
// destination), counting what arrives. It decides nothing the controller
// runs; it must not import Kubernetes code (see TestImportLayering), unlike
// internal/testsupport, nor be imported outside tests.
package m365test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// Target is a server a redirect or a nextLink points at, which no client may
// ever reach: it counts the requests that arrive and those carrying an
// Authorization header, and answers 200 with an empty list (licensing and
// Graph shapes) so a client that follows sees success.
type Target struct {
	*httptest.Server
	hits, withToken atomic.Int32
}

// NewTarget starts a Target, over TLS when tls is true (else plain http),
// closed when the test ends.
func NewTarget(t *testing.T, tls bool) *Target {
	t.Helper()
	tg := &Target{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.hits.Add(1)
		if r.Header.Get("Authorization") != "" {
			tg.withToken.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"items":[],"value":[]}`)
	})
	if tls {
		tg.Server = httptest.NewTLSServer(h)
	} else {
		tg.Server = httptest.NewServer(h)
	}
	t.Cleanup(tg.Close)
	return tg
}

// CheckUntouched fails the test if any request reached the target.
func (tg *Target) CheckUntouched(t *testing.T) {
	t.Helper()
	if n := tg.hits.Load(); n != 0 {
		t.Errorf("%d requests (%d with a token) reached %s", n, tg.withToken.Load(), tg.URL)
	}
}
