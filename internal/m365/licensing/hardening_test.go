package licensing_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/google/go-cmp/cmp"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/m365test"
)

// TestRedirectsAreNeverFollowed: a 302 on a PUT must not become a GET that
// answers 200 (counted as a write), and an https→http redirect on the same
// host must not carry the token. The caller gets a Redirected error naming
// the status and the Location's host.
func TestRedirectsAreNeverFollowed(t *testing.T) {
	cases := map[string]struct {
		reason string
		status int
		tls    bool
		call   func(context.Context, *licensing.Client, azcore.TokenCredential) error
	}{
		"302 on a PUT": {
			reason: "a PUT redirected with 302 would be re-sent as a GET and its 200 counted as a write",
			status: http.StatusFound, tls: true,
			call: setCopilot,
		},
		"307 on a PUT": {
			reason: "a 307 would re-send the PUT body and the token elsewhere",
			status: http.StatusTemporaryRedirect, tls: true,
			call: setCopilot,
		},
		"https to http on the same host": {
			reason: "a downgrade to plain http on the same host keeps the Authorization header in net/http",
			status: http.StatusMovedPermanently, tls: false,
			call: listProducts,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			target := m365test.NewTarget(t, tc.tls)
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+r.URL.Path+"?leak=1", tc.status)
			})
			err := tc.call(context.Background(), newClient(t, srv, nil), &staticCred{})
			e, ok := m365.AsError(err)
			if !ok || e.Kind != m365.Redirected || e.StatusCode != tc.status {
				t.Fatalf("%s: want a Redirected error for HTTP %d, got %v", tc.reason, tc.status, err)
			}
			if host := strings.TrimPrefix(strings.TrimPrefix(target.URL, "https://"), "http://"); !strings.Contains(err.Error(), host) || strings.Contains(err.Error(), "leak=1") {
				t.Errorf("the error should name the Location's host %s and not its query: %v", host, err)
			}
			target.CheckUntouched(t)
			if srv.Requests() != 1 {
				t.Errorf("the endpoint saw %d requests, want 1", srv.Requests())
			}
		})
	}
}

// TestErrorBodyEchoingCredentialsIsNotQuoted: a proxy page echoing the
// request's Authorization header (and a secret) reaches neither the error's
// text nor its reason.
func TestErrorBodyEchoingCredentialsIsNotQuoted(t *testing.T) {
	page := "<html><body><h1>403 Forbidden</h1><pre>Authorization: Bearer " + testToken + "\nclient_secret=" + url.QueryEscape(testSecret) + "</pre></body></html>"
	srv := newServer(t, respond(http.StatusForbidden, page, "Content-Type", "text/html"))
	err := listProducts(context.Background(), newClient(t, srv, nil), &staticCred{})
	e, ok := m365.AsError(err)
	if !ok || e.Kind != m365.Forbidden {
		t.Fatalf("want Forbidden, got %v", err)
	}
	for _, s := range []string{testToken, testSecret, url.QueryEscape(testSecret), "<html"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error quotes %q: %v", s, err)
		}
	}
	if want := "non-JSON answer (content-type text/html, "; !strings.HasPrefix(e.Reason, want) {
		t.Errorf("reason %q, want it to start with %q", e.Reason, want)
	}
}

// TestListIsDeduplicatedAndBounded: whatever the list holds, what the client
// returns fits the CRD (unique product IDs of at most 64 bytes, names of at
// most 256 runes) and ListInfo says what was left out or cut.
func TestListIsDeduplicatedAndBounded(t *testing.T) {
	long := strings.Repeat("n", 300)
	cases := map[string]struct {
		reason    string
		answer    string
		offer     bool
		wantIDs   []string
		wantNames []string
		wantInfo  m365.ListInfo
	}{
		"duplicate product IDs": {
			reason:  "the API server refuses a status with two entries of one productID: keep the first",
			answer:  `{"items":[{"productId":"A","productName":"first","policyValue":"Enabled"},{"productId":"B","productName":"b"},{"productId":"A","productName":"second","policyValue":"Disabled"}]}`,
			wantIDs: []string{"A", "B"}, wantNames: []string{"first", "b"},
			wantInfo: m365.ListInfo{Duplicates: 1},
		},
		"null, empty and malformed items": {
			reason:  "null items and items without an ID or of the wrong shape are dropped, not turned into empty products",
			answer:  `{"items":[null,{"productName":"no id"},{"productId":7},"x",{"productId":"C","productName":"c"}]}`,
			wantIDs: []string{"C"}, wantNames: []string{"c"},
			wantInfo: m365.ListInfo{Invalid: 4},
		},
		"an ID longer than the CRD allows": {
			reason:  "a cut ID would name another product: drop it",
			answer:  `{"items":[{"productId":"` + strings.Repeat("I", 65) + `"},{"productId":"D","productName":"d"}]}`,
			wantIDs: []string{"D"}, wantNames: []string{"d"},
			wantInfo: m365.ListInfo{Invalid: 1},
		},
		"a 300-character name": {
			reason:  "names are cut to 256 runes with a marker",
			answer:  `{"items":[{"productId":"E","productName":"` + long + `"}]}`,
			wantIDs: []string{"E"}, wantNames: []string{strings.Repeat("n", 255) + "…"},
			wantInfo: m365.ListInfo{Truncated: 1},
		},
		"duplicate offer types": {
			reason:  "offer types are unique by their key",
			offer:   true,
			answer:  `{"items":[{"productId":"SaaS","productName":"one"},{"productId":"x","offerType":"SaaS","productName":"two"}]}`,
			wantIDs: []string{"SaaS"}, wantNames: []string{"one"},
			wantInfo: m365.ListInfo{Duplicates: 1},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, respond(200, tc.answer, "Content-Type", "application/json"))
			tenant := newClient(t, srv, nil).For(testTenant, &staticCred{})
			list := tenant.ListProducts
			if tc.offer {
				list = tenant.ListOfferTypes
			}
			items, info, err := list(context.Background())
			if err != nil {
				t.Fatalf("%s: %v", tc.reason, err)
			}
			var ids, names []string
			for _, it := range items {
				id := it.ProductID
				if tc.offer {
					id = it.OfferType
				}
				ids, names = append(ids, id), append(names, it.ProductName)
			}
			if diff := cmp.Diff(tc.wantIDs, ids); diff != "" {
				t.Errorf("%s: IDs (-want +got):\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantNames, names); diff != "" {
				t.Errorf("%s: names (-want +got):\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantInfo, info); diff != "" {
				t.Errorf("%s: info (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}
