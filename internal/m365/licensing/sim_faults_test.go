package licensing_test

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// TestSimMisbehaviour runs the client against the simulator's faults: the
// redirects, answers and error pages of a misbehaving service or proxy.
// Nothing reaches the leak sink, no write is counted that was not made, and
// what the client returns fits the CRD.
func TestSimMisbehaviour(t *testing.T) {
	products := len(m365sim.DefaultProducts())
	cases := map[string]struct {
		reason string
		fault  m365sim.Fault
		put    bool
		check  func(t *testing.T, f *simFixture, items int, info m365.ListInfo, err error)
	}{
		"302 on a PUT": {
			reason: "a PUT turned into a GET would answer 200 and be counted as a write",
			fault:  m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "PUT", Status: 302},
			put:    true,
			check: func(t *testing.T, f *simFixture, _ int, _ m365.ListInfo, err error) {
				wantKind(t, err, m365.Redirected)
				if got, _ := f.sim.Policy(f.tenant, "CFQ7TTC0MM8R"); got != "Enabled" {
					t.Errorf("the policy changed to %q", got)
				}
			},
		},
		"301 to plain http on the same host": {
			reason: "net/http keeps the Authorization header on a same-host downgrade",
			fault:  m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "GET", Status: 301, Location: "http://{host}:{sinkPort}{requestURI}"},
			check: func(t *testing.T, _ *simFixture, _ int, _ m365.ListInfo, err error) {
				wantKind(t, err, m365.Redirected)
			},
		},
		"duplicate product IDs": {
			reason: "status refuses two entries of one productID",
			fault:  m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "GET", Answer: m365sim.AnswerDuplicateItems},
			check: func(t *testing.T, _ *simFixture, items int, info m365.ListInfo, err error) {
				if err != nil || items != products || info != (m365.ListInfo{Duplicates: 1}) {
					t.Errorf("got %d items, %+v, %v; want %d unique items and one duplicate", items, info, err, products)
				}
			},
		},
		"null items": {
			reason: "nulls are neither products nor a reason to fail",
			fault:  m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "GET", Answer: m365sim.AnswerNullItems, N: 2},
			check: func(t *testing.T, _ *simFixture, items int, info m365.ListInfo, err error) {
				if err != nil || items != products || info != (m365.ListInfo{Invalid: 2}) {
					t.Errorf("got %d items, %+v, %v; want %d items and two invalid", items, info, err, products)
				}
			},
		},
		"a 300-character name": {
			reason: "status.products[].name is at most 256 characters",
			fault:  m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "GET", Answer: m365sim.AnswerLongName, N: 300},
			check: func(t *testing.T, _ *simFixture, items int, info m365.ListInfo, err error) {
				if err != nil || items != products || info != (m365.ListInfo{Truncated: 1}) {
					t.Errorf("got %d items, %+v, %v; want %d items, one cut", items, info, err, products)
				}
			},
		},
		"a 10 MiB answer": {
			reason: "no answer is read beyond the shared cap",
			fault:  m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "GET", Answer: m365sim.AnswerOversize},
			check: func(t *testing.T, _ *simFixture, _ int, _ m365.ListInfo, err error) {
				wantKind(t, err, m365.InvalidResponse)
			},
		},
		"a proxy page echoing the request headers": {
			reason: "the bearer token in the page must not reach status or Events",
			fault:  m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Status: 502, Answer: m365sim.AnswerEchoHeaders},
			check: func(t *testing.T, f *simFixture, _ int, _ m365.ListInfo, err error) {
				wantKind(t, err, m365.Transient)
				tok, _ := f.writer.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{m365.LicensingScope}})
				if tok.Token == "" || strings.Contains(err.Error(), tok.Token) || strings.Contains(err.Error(), "<") {
					t.Errorf("the error quotes the page: %v", err)
				}
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newSimFixture(t)
			if err := f.sim.InjectFault(f.tenant, tc.fault); err != nil {
				t.Fatal(err)
			}
			tenant := f.client.For(f.tenant, f.writer)
			var (
				items []licensing.Item
				info  m365.ListInfo
				err   error
			)
			if tc.put {
				_, err = tenant.SetProduct(context.Background(), "CFQ7TTC0MM8R", "Disabled")
			} else {
				items, info, err = tenant.ListProducts(context.Background())
			}
			seen := map[string]bool{}
			for _, it := range items {
				if seen[it.ProductID] || utf8.RuneCountInString(it.ProductName) > m365.MaxNameLength {
					t.Errorf("%s: repeated, or a name of %d characters", it.ProductID, utf8.RuneCountInString(it.ProductName))
				}
				seen[it.ProductID] = true
			}
			tc.check(t, f, len(items), info, err)
			if leaked := f.sim.LeakedRequests(); len(leaked) != 0 {
				t.Errorf("%s: requests reached the leak sink: %+v", tc.reason, leaked)
			}
		})
	}
}

func wantKind(t *testing.T, err error, kind m365.Kind) {
	t.Helper()
	if got := m365.KindOf(err); got != kind {
		t.Errorf("want %s, got %v", kind, err)
	}
}
