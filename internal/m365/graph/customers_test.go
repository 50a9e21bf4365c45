package graph_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

const (
	partnerTenant   = "5b2e7c1d-3a4f-4b6c-8d9e-0f1a2b3c4d5e"
	partnerClientID = "77777777-8888-9999-aaaa-bbbbbbbbbbbb"
	nogdapClientID  = "88888888-9999-aaaa-bbbb-cccccccccccc"
)

// startPartner runs the simulator with a partner tenant and n customers
// (outside the simulator, so only their relationships exist), and returns
// the customers as ListDelegatedAdminCustomers must return them.
func startPartner(t *testing.T, n int) (*m365sim.Server, []graph.Customer) {
	t.Helper()
	sim, err := m365sim.New(m365sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	if _, err := sim.AddTenant(m365sim.TenantConfig{ID: partnerTenant, Name: "Partner"}); err != nil {
		t.Fatal(err)
	}
	for id, perms := range map[string][]string{
		partnerClientID: {m365sim.PermDelegatedAdminRelationshipRead},
		nogdapClientID:  {m365sim.PermOrganizationRead},
	} {
		if err := sim.RegisterApp(partnerTenant, m365sim.App{ClientID: id, Secret: simSecret, Permissions: perms}); err != nil {
			t.Fatal(err)
		}
	}
	var want []graph.Customer
	for i := range n {
		c := graph.Customer{TenantID: uuid.NewString(), DisplayName: fmt.Sprintf("Customer %03d", i)}
		// Upper case on the way in: the client hands back lower case.
		if _, err := sim.AddCustomerRelationship(partnerTenant, m365sim.CustomerRequest{TenantID: strings.ToUpper(c.TenantID), DisplayName: c.DisplayName}); err != nil {
			t.Fatal(err)
		}
		want = append(want, c)
	}
	return sim, want
}

func partnerCredential(t *testing.T, sim *m365sim.Server, clientID string) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(partnerTenant, clientID, simSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: sim.Endpoints().AuthorityHost + "/"}, Transport: sim.HTTPClient()},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func listCustomers(t *testing.T, sim *m365sim.Server, clientID string) ([]graph.Customer, m365.ListInfo, error) {
	t.Helper()
	return simClient(t, sim).For(partnerTenant, partnerCredential(t, sim, clientID)).ListDelegatedAdminCustomers(context.Background())
}

// A partner with 650 customers is read in three pages of 300, the largest
// Microsoft allows: the floor of a discovery.
func TestListDelegatedAdminCustomersReadsEveryPageAt300(t *testing.T) {
	sim, want := startPartner(t, 650)
	got, info, err := listCustomers(t, sim, partnerClientID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("customers (-want +got):\n%s", diff)
	}
	if info != (m365.ListInfo{}) {
		t.Errorf("list info %+v, want nothing dropped", info)
	}
	if n := sim.Requests(partnerTenant).Counts["graph GET delegatedAdminCustomers"]; n != 3 {
		t.Errorf("%d requests, want 3 pages of 300", n)
	}
}

func TestListDelegatedAdminCustomersWithoutPermissionIsForbidden(t *testing.T) {
	sim, _ := startPartner(t, 1)
	_, _, err := listCustomers(t, sim, nogdapClientID)
	e, ok := m365.AsError(err)
	if !ok || e.Kind != m365.Forbidden || e.Op != graph.OpListDelegatedAdminCustomers || e.StatusCode != 403 {
		t.Fatalf("error = %#v, want a Forbidden *m365.Error of %q", err, graph.OpListDelegatedAdminCustomers)
	}
}

// Graph's answers go wrong as the simulator's faults do: null items, items
// without a tenantId and items repeated across pages are left out and
// counted, an empty page is returned as it is (the caller decides what it
// means), a nextLink to another origin is not followed.
func TestListDelegatedAdminCustomersDecodesDefensively(t *testing.T) {
	cases := map[string]struct {
		fault m365sim.Fault
		// want returns the expected customers from the real ones.
		want     func([]graph.Customer) []graph.Customer
		wantInfo m365.ListInfo
		wantErr  m365.Kind
	}{
		"null items are skipped and counted": {
			fault:    m365sim.Fault{Answer: m365sim.AnswerNullItems, N: 3, Count: 1},
			want:     func(c []graph.Customer) []graph.Customer { return c },
			wantInfo: m365.ListInfo{Invalid: 3},
		},
		"items repeated across pages are returned once": {
			fault:    m365sim.Fault{Answer: m365sim.AnswerDuplicateItems, N: 5, Count: 1},
			want:     func(c []graph.Customer) []graph.Customer { return c },
			wantInfo: m365.ListInfo{Duplicates: 5},
		},
		"items without tenantId are skipped and counted": {
			fault:    m365sim.Fault{Answer: m365sim.AnswerMissingFields, Fields: []string{"tenantId"}, Count: 1},
			want:     func(c []graph.Customer) []graph.Customer { return c[300:] },
			wantInfo: m365.ListInfo{Invalid: 300},
		},
		"an empty page is an empty answer, not an error": {
			fault: m365sim.Fault{Answer: m365sim.AnswerEmptyPage},
			want:  func([]graph.Customer) []graph.Customer { return []graph.Customer{} },
		},
		"a nextLink to another origin is not followed": {
			fault:   m365sim.Fault{Answer: m365sim.AnswerCrossOriginNextLink, Count: 1},
			wantErr: m365.InvalidResponse,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			sim, all := startPartner(t, 310)
			tc.fault.Endpoint = m365sim.EndpointGraph
			if err := sim.InjectFault(partnerTenant, tc.fault); err != nil {
				t.Fatal(err)
			}
			got, info, err := listCustomers(t, sim, partnerClientID)
			if tc.wantErr != "" {
				if m365.KindOf(err) != tc.wantErr {
					t.Fatalf("error %v, want kind %s", err, tc.wantErr)
				}
				if n := len(sim.LeakedRequests()); n != 0 {
					t.Errorf("%d requests reached the foreign origin", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want(all), got); diff != "" {
				t.Errorf("customers (-want +got):\n%s", diff)
			}
			if info != tc.wantInfo {
				t.Errorf("list info %+v, want %+v", info, tc.wantInfo)
			}
		})
	}
}
