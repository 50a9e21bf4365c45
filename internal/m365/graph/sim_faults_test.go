package graph_test

import (
	"context"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// TestSimMisbehaviour runs the Graph client against the simulator's faults:
// nothing reaches the leak sink (a redirect or a nextLink pointed at it), a
// misbehaving page never panics or yields duplicates, and an error page that
// echoes the request headers is not quoted.
func TestSimMisbehaviour(t *testing.T) {
	const subsPath = "/v1.0/directory/subscriptions"
	cases := map[string]struct {
		fault m365sim.Fault
		// want is the error kind; "" for success, where dropped says what
		// the fault's answer (on every page) must have been counted as.
		want    m365.Kind
		dropped func(m365.ListInfo) int
	}{
		"307 to the leak sink": {
			fault: m365sim.Fault{Endpoint: m365sim.EndpointGraph, PathPrefix: subsPath, Status: 307},
			want:  m365.Redirected,
		},
		"302 to another port of the same host": {
			fault: m365sim.Fault{Endpoint: m365sim.EndpointGraph, PathPrefix: subsPath, Status: 302, Location: "https://{host}:{sinkPort}{requestURI}"},
			want:  m365.Redirected,
		},
		"nextLink to the leak sink": {
			fault: m365sim.Fault{Endpoint: m365sim.EndpointGraph, PathPrefix: subsPath, Answer: m365sim.AnswerCrossOriginNextLink},
			want:  m365.InvalidResponse,
		},
		"nextLink loop": {
			fault: m365sim.Fault{Endpoint: m365sim.EndpointGraph, PathPrefix: subsPath, Answer: m365sim.AnswerNextLinkLoop},
			want:  m365.InvalidResponse,
		},
		"oversized page": {
			fault: m365sim.Fault{Endpoint: m365sim.EndpointGraph, PathPrefix: subsPath, Answer: m365sim.AnswerOversize},
			want:  m365.InvalidResponse,
		},
		"proxy page echoing the headers": {
			fault: m365sim.Fault{Endpoint: m365sim.EndpointGraph, PathPrefix: subsPath, Status: 502, Answer: m365sim.AnswerEchoHeaders},
			want:  m365.Transient,
		},
		"null items": {
			fault:   m365sim.Fault{Endpoint: m365sim.EndpointGraph, PathPrefix: subsPath, Answer: m365sim.AnswerNullItems, N: 2},
			dropped: func(i m365.ListInfo) int { return i.Invalid },
		},
		"duplicates across pages": {
			fault:   m365sim.Fault{Endpoint: m365sim.EndpointGraph, PathPrefix: subsPath, Answer: m365sim.AnswerDuplicateItems},
			dropped: func(i m365.ListInfo) int { return i.Duplicates },
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			sim, _ := startSim(t)
			cred := simCredential(t, sim, readerClientID)
			c := simClient(t, sim).For(simTenant, cred)
			clean, _, err := c.ListSubscriptions(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := sim.InjectFault(simTenant, tc.fault); err != nil {
				t.Fatal(err)
			}
			subs, info, err := c.ListSubscriptions(context.Background())
			if got := m365.KindOf(err); got != tc.want {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
			if tc.want == "" {
				if diff := cmp.Diff(ids(clean), ids(subs)); diff != "" {
					t.Errorf("subscriptions differ from a clean answer's (-clean +faulty):\n%s", diff)
				}
				if n := tc.dropped(info); n == 0 || n != info.Dropped() {
					t.Errorf("info %+v does not count the fault's items", info)
				}
			}
			if err != nil {
				tok, _ := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{m365.GraphScope}})
				if strings.Contains(err.Error(), tok.Token) || strings.Contains(err.Error(), "<") {
					t.Errorf("the error quotes the answer: %v", err)
				}
			}
			if leaked := sim.LeakedRequests(); len(leaked) != 0 {
				t.Errorf("requests reached the leak sink: %+v", leaked)
			}
		})
	}
}

func ids(subs []graph.Subscription) []string {
	out := make([]string, len(subs))
	for i, s := range subs {
		out[i] = s.ID
	}
	return out
}
