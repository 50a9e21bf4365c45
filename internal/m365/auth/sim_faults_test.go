package auth

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// TestSimAuthorityMisbehaviour: the simulator's authority redirects the token
// request to its leak sink (307/308 would re-post the client secret), or a
// proxy answers with a page echoing the request. No credential reaches the
// sink and none is quoted in the error.
func TestSimAuthorityMisbehaviour(t *testing.T) {
	const tokenPath = "/" + testTenant + "/oauth2/v2.0/token"
	cases := map[string]struct {
		fault m365sim.Fault
		want  m365.Kind
	}{
		"307 from the token endpoint": {
			fault: m365sim.Fault{Endpoint: m365sim.EndpointAuthority, PathPrefix: tokenPath, Status: 307},
			want:  m365.Redirected,
		},
		"308 from the metadata document": {
			fault: m365sim.Fault{Endpoint: m365sim.EndpointAuthority, Method: "GET", Status: 308},
			want:  m365.Redirected,
		},
		"a proxy page echoing the form": {
			fault: m365sim.Fault{Endpoint: m365sim.EndpointAuthority, PathPrefix: tokenPath, Status: 400, Answer: m365sim.AnswerEchoHeaders},
			want:  m365.BadRequest,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := newSim(t)
			s.register(t, m365sim.App{ClientID: testClient, Secret: testSecret, Permissions: readWrite})
			if err := s.sim.InjectFault(s.tenant, tc.fault); err != nil {
				t.Fatal(err)
			}
			_, err := mustCredential(t, s.provider, secretMaterial(testSecret)).GetToken(context.Background(), licensingScope)
			if got := m365.KindOf(err); got != tc.want {
				t.Errorf("want %s, got %v", tc.want, err)
			}
			if err != nil && (strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), url.QueryEscape(testSecret))) {
				t.Errorf("the error shows the secret: %v", err)
			}
			if leaked := s.sim.LeakedRequests(); len(leaked) != 0 {
				t.Errorf("requests reached the leak sink: %+v", leaked)
			}
		})
	}
}
