package graph_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/go-cmp/cmp"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

const (
	simTenant      = "4a1c8f3e-2b6d-4e8f-9a0b-1c2d3e4f5a6b"
	readerClientID = "11111111-2222-3333-4444-555555555555"
	usersClientID  = "66666666-7777-8888-9999-000000000000"
	simSecret      = "sim-secret-value"
)

// startSim runs the simulator with a sample tenant (plus one self-service
// purchase) and two apps: one that may read organisation and users, one that
// may only read users.
func startSim(t *testing.T) (*m365sim.Server, m365sim.Subscription) {
	t.Helper()
	sim, err := m365sim.New(m365sim.Options{PageSize: 2})
	if err != nil {
		t.Fatalf("m365sim.New: %v", err)
	}
	if err := sim.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(sim.Close)
	if _, err := sim.AddTenant(m365sim.TenantConfig{ID: simTenant, WithSampleDirectory: true}); err != nil {
		t.Fatalf("AddTenant: %v", err)
	}
	for id, perms := range map[string][]string{
		readerClientID: {m365sim.PermOrganizationRead, m365sim.PermUserRead},
		usersClientID:  {m365sim.PermUserRead},
	} {
		if err := sim.RegisterApp(simTenant, m365sim.App{ClientID: id, Secret: simSecret, Permissions: perms}); err != nil {
			t.Fatalf("RegisterApp: %v", err)
		}
	}
	bought, err := sim.Purchase(simTenant, m365sim.PurchaseRequest{UserPrincipalName: "buyer@sim.example", SkuPartNumber: "Microsoft_365_Copilot", IgnorePolicy: true})
	if err != nil {
		t.Fatalf("Purchase: %v", err)
	}
	return sim, bought
}

// simCredential is a real azidentity credential against the simulator.
func simCredential(t *testing.T, sim *m365sim.Server, clientID string) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(simTenant, clientID, simSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: sim.Endpoints().AuthorityHost + "/"},
			Transport: sim.HTTPClient(),
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatalf("NewClientSecretCredential: %v", err)
	}
	return cred
}

func simClient(t *testing.T, sim *m365sim.Server) *graph.Client {
	t.Helper()
	c, err := graph.New(graph.Options{Endpoint: sim.Endpoints().Graph, HTTPClient: sim.HTTPClient()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// fromSim is what ListSubscriptions must return for a simulator subscription
// (Graph sends times to the second).
func fromSim(s m365sim.Subscription) graph.Subscription {
	next := s.NextLifecycleDateTime.UTC().Truncate(time.Second)
	return graph.Subscription{
		ID: s.ID, CommerceSubscriptionID: s.CommerceSubscriptionID, SkuID: s.SkuID, SkuPartNumber: s.SkuPartNumber,
		Status: s.Status, TotalLicenses: s.TotalLicenses, IsTrial: s.IsTrial,
		Created: s.CreatedDateTime.UTC().Truncate(time.Second), NextLifecycle: &next,
		OwnerID: s.OwnerID, OwnerTenantID: s.OwnerTenantID, OwnerType: s.OwnerType,
	}
}

func TestSimulatorRoundTrip(t *testing.T) {
	sim, bought := startSim(t)
	c := simClient(t, sim)
	cred := simCredential(t, sim, readerClientID)
	ctx := context.Background()

	subs, _, err := c.For(simTenant, cred).ListSubscriptions(ctx)
	if err != nil {
		t.Fatalf("ListSubscriptions: %v", err)
	}
	simSubs, err := sim.Subscriptions(simTenant)
	if err != nil {
		t.Fatal(err)
	}
	var want []graph.Subscription
	for _, s := range simSubs {
		want = append(want, fromSim(s))
	}
	if len(want) < 3 {
		t.Fatalf("sample tenant has %d subscriptions; need more than one page of 2", len(want))
	}
	if diff := cmp.Diff(want, subs); diff != "" {
		t.Errorf("subscriptions (-simulator +client):\n%s", diff)
	}

	skus, _, err := c.For(simTenant, cred).ListSubscribedSkus(ctx)
	if err != nil {
		t.Fatalf("ListSubscribedSkus: %v", err)
	}
	var listed []string
	for _, k := range skus {
		listed = append(listed, k.SubscriptionIDs...)
		if k.SkuID == "" || k.AccountID == "" || k.SkuPartNumber == "" {
			t.Errorf("subscribed SKU missing fields: %+v", k)
		}
	}
	var wantIDs []string
	for _, s := range simSubs {
		wantIDs = append(wantIDs, s.ID)
	}
	slices.Sort(listed)
	slices.Sort(wantIDs)
	if diff := cmp.Diff(wantIDs, listed); diff != "" {
		t.Errorf("subscription IDs across subscribed SKUs (-want +got):\n%s", diff)
	}

	buyer, err := c.For(simTenant, cred).GetUser(ctx, bought.OwnerID)
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if buyer.ID != bought.OwnerID || buyer.UserPrincipalName != "buyer@sim.example" || !slices.Contains(buyer.AssignedSkuIDs, bought.SkuID) {
		t.Errorf("buyer = %+v, want %s holding SKU %s", buyer, bought.OwnerID, bought.SkuID)
	}

	counts := sim.Requests(simTenant).Counts
	pages := (len(simSubs) + 1) / 2
	for route, want := range map[string]int{
		"graph GET subscriptions": pages,
		"graph GET user":          1,
		"graph GET users-list":    0,
		"authority POST token":    1,
	} {
		if counts[route] != want {
			t.Errorf("simulator counted %d %q, want %d (all counts: %v)", counts[route], route, want, counts)
		}
	}
}

func TestSimulatorForbiddenWithoutOrganizationRead(t *testing.T) {
	sim, _ := startSim(t)
	_, _, err := simClient(t, sim).For(simTenant, simCredential(t, sim, usersClientID)).ListSubscriptions(context.Background())
	e, ok := m365.AsError(err)
	if !ok {
		t.Fatalf("error %v is not an *m365.Error", err)
	}
	got := failure{e.Kind, e.Op, e.StatusCode, e.Code, e.Reason, e.RetryAfter}
	want := failure{Kind: m365.Forbidden, Op: graph.OpListSubscriptions, StatusCode: 403, Code: "Authorization_RequestDenied", Reason: "Insufficient privileges to complete the operation."}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}
