package graph_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/m365test"
)

// newElsewhere is a TLS server on the same host as the fake Graph (another
// port): kiota's token filter allows it, so only the client's own guard keeps
// requests and tokens away from it.
func newElsewhere(t *testing.T) *m365test.Target { return m365test.NewTarget(t, true) }

// TestRedirectsAreNeverFollowed: kiota's redirect handler would follow a 302
// and, the host being allowed, send the token along. The client follows
// nothing and says where it was sent.
func TestRedirectsAreNeverFollowed(t *testing.T) {
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			target := newElsewhere(t)
			f := newFakeGraph(t)
			f.setFault(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+r.URL.Path+"?$skiptoken=secret", status)
			})
			err := listSubscriptions(context.Background(), newClient(t, f, 0), &fakeCredential{token: testToken})
			got := failureOf(t, err)
			if got.Kind != m365.Redirected || got.StatusCode != status || !strings.Contains(got.Reason, strings.TrimPrefix(target.URL, "https://")) {
				t.Errorf("want Redirected (HTTP %d) naming %s, got %+v", status, target.URL, got)
			}
			if strings.Contains(err.Error(), "skiptoken") {
				t.Errorf("the error quotes the Location's query: %v", err)
			}
			target.CheckUntouched(t)
			if n := len(f.requests()); n != 1 {
				t.Errorf("Graph saw %d requests, want 1", n)
			}
		})
	}
}

// TestNextLinkMustStayOnTheEndpoint: a nextLink to another origin (here the
// same host name on another port, which kiota would send the token to) fails
// the listing without a request; so does one that repeats.
func TestNextLinkMustStayOnTheEndpoint(t *testing.T) {
	target := newElsewhere(t)
	cases := map[string]struct {
		link func(r *http.Request) string
	}{
		"another port":      {func(*http.Request) string { return target.URL + "/v1.0/directory/subscriptions?$skiptoken=2" }},
		"plain http":        {func(r *http.Request) string { return "http://" + r.Host + "/v1.0/directory/subscriptions?$skiptoken=2" }},
		"another host":      {func(*http.Request) string { return "https://graph.example.invalid/v1.0/directory/subscriptions" }},
		"a relative link":   {func(*http.Request) string { return "/v1.0/directory/subscriptions?$skiptoken=2" }},
		"user info in link": {func(r *http.Request) string { return "https://user@" + r.Host + "/v1.0/directory/subscriptions" }},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFakeGraph(t)
			f.setFault(func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, map[string]any{"value": []any{wireSubscriptions()[0]}, "@odata.nextLink": tc.link(r)})
			})
			err := listSubscriptions(context.Background(), newClient(t, f, 0), &fakeCredential{token: testToken})
			if got := failureOf(t, err); got.Kind != m365.InvalidResponse || got.Op != graph.OpListSubscriptions {
				t.Errorf("want InvalidResponse from %q, got %+v", graph.OpListSubscriptions, got)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("Graph saw %d requests, want only the first page", n)
			}
		})
	}
	target.CheckUntouched(t)
}

// TestNullItemsAreSkipped: a null in a page used to panic in conversion
// (recovered by controller-runtime after status had said Ready).
func TestNullItemsAreSkipped(t *testing.T) {
	f := newFakeGraph(t)
	f.subscriptions = append([]map[string]any{nil}, f.subscriptions...)
	f.skus = append(f.skus[:2:2], append([]map[string]any{nil}, f.skus[2:]...)...)
	c := newClient(t, f, 0).For(testTenant, &fakeCredential{token: testToken})

	subs, info, err := c.ListSubscriptions(context.Background())
	if err != nil {
		t.Fatalf("ListSubscriptions: %v", err)
	}
	if diff := cmp.Diff(wantSubscriptions(), subs); diff != "" {
		t.Errorf("subscriptions (-want +got):\n%s", diff)
	}
	if info != (m365.ListInfo{Invalid: 1}) {
		t.Errorf("info %+v, want one invalid item", info)
	}
	skus, info, err := c.ListSubscribedSkus(context.Background())
	if err != nil {
		t.Fatalf("ListSubscribedSkus: %v", err)
	}
	if diff := cmp.Diff(wantSkus(), skus); diff != "" {
		t.Errorf("SKUs (-want +got):\n%s", diff)
	}
	if info != (m365.ListInfo{Invalid: 1}) {
		t.Errorf("info %+v, want one invalid item", info)
	}
}

// TestDuplicatesAcrossPagesAreDropped: the same subscription on two pages
// would be two status entries with one id (refused by the API server).
func TestDuplicatesAcrossPagesAreDropped(t *testing.T) {
	f := newFakeGraph(t)
	subs := wireSubscriptions()
	dup := map[string]any{}
	for k, v := range subs[0] {
		dup[k] = v
	}
	dup["status"] = "Deleted"
	f.subscriptions = append(subs, dup) // sub-0 again, on the last page
	skus := wireSkus()
	f.skus = append(skus, skus[1])
	c := newClient(t, f, 0).For(testTenant, &fakeCredential{token: testToken})

	got, info, err := c.ListSubscriptions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantSubscriptions(), got); diff != "" {
		t.Errorf("subscriptions: the first of each id is kept (-want +got):\n%s", diff)
	}
	if info != (m365.ListInfo{Duplicates: 1}) {
		t.Errorf("info %+v, want one duplicate", info)
	}
	gotSkus, info, err := c.ListSubscribedSkus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantSkus(), gotSkus); diff != "" {
		t.Errorf("SKUs: one per SKU and billing account (-want +got):\n%s", diff)
	}
	if info != (m365.ListInfo{Duplicates: 1}) {
		t.Errorf("info %+v, want one duplicate", info)
	}
}

// TestFieldsAreBounded: what the reconciler copies into status fits the CRD.
func TestFieldsAreBounded(t *testing.T) {
	f := newFakeGraph(t)
	subs := wireSubscriptions()[:2]
	subs[0]["skuPartNumber"] = strings.Repeat("P", 200)
	subs[0]["status"] = strings.Repeat("S", 40)
	subs[0]["ownerId"] = strings.Repeat("o", 65)
	subs[1]["id"] = strings.Repeat("i", 65)
	f.subscriptions = subs
	got, info, err := newClient(t, f, 0).For(testTenant, &fakeCredential{token: testToken}).ListSubscriptions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || info != (m365.ListInfo{Invalid: 1, Truncated: 1}) {
		t.Fatalf("got %d subscriptions, info %+v; want 1, one invalid (its id is too long), one truncated", len(got), info)
	}
	s := got[0]
	if s.SkuPartNumber != strings.Repeat("P", 127)+"…" || s.Status != strings.Repeat("S", 31)+"…" || s.OwnerID != "" {
		t.Errorf("fields not bounded: skuPartNumber %q, status %q, ownerId %q", s.SkuPartNumber, s.Status, s.OwnerID)
	}
}

// TestOversizedAnswerIsRefused: the SDK path reads bodies through the
// shared cap too.
func TestOversizedAnswerIsRefused(t *testing.T) {
	f := newFakeGraph(t)
	f.setFault(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"value":[],"pad":"`+strings.Repeat("x", m365.MaxResponseBytes)+`"}`)
	})
	err := listSkus(context.Background(), newClient(t, f, 0), &fakeCredential{token: testToken})
	if got := failureOf(t, err); got.Kind != m365.InvalidResponse || got.Op != graph.OpListSubscribedSkus {
		t.Errorf("want InvalidResponse from %q, got %+v", graph.OpListSubscribedSkus, got)
	}
}

// TestErrorPageEchoingTheTokenIsNotQuoted: a proxy page that echoes the
// request's Authorization header never reaches the error.
func TestErrorPageEchoingTheTokenIsNotQuoted(t *testing.T) {
	f := newFakeGraph(t)
	f.setFault(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html><pre>Authorization: "+r.Header.Get("Authorization")+"</pre></html>")
	})
	err := getUser(testUserID)(context.Background(), newClient(t, f, 0), &fakeCredential{token: testToken})
	got := failureOf(t, err)
	if got.Kind != m365.Transient || !strings.HasPrefix(got.Reason, "non-JSON answer (content-type text/html, ") {
		t.Errorf("want Transient with a description of the page, got %+v", got)
	}
	if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), "<") {
		t.Errorf("the error quotes the page: %v", err)
	}
}

// TestPagingEndsWithinTheLimit: a service that answers every page with a new
// nextLink is stopped at the page limit.
func TestPagingEndsWithinTheLimit(t *testing.T) {
	f := newFakeGraph(t)
	var n atomic.Int32
	f.setFault(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"value": []any{}, "@odata.nextLink": "https://" + r.Host + r.URL.Path + "?$skiptoken=" + strconv.Itoa(int(n.Add(1)))})
	})
	err := listSubscriptions(context.Background(), newClient(t, f, 0), &fakeCredential{token: testToken})
	if got := failureOf(t, err); got.Kind != m365.InvalidResponse || !strings.Contains(got.Reason, "pages") {
		t.Errorf("want InvalidResponse about pages, got %+v", got)
	}
	if got := len(f.requests()); got != 100 {
		t.Errorf("Graph saw %d requests, want 100 (the page limit)", got)
	}
}
