package licensing_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/go-cmp/cmp"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

const (
	simWriter       = "11111111-2222-3333-4444-555555555555"
	simWriterSecret = "writer-secret-value"
	simReader       = "66666666-7777-8888-9999-000000000000"
	simReaderSecret = "reader-secret-value"
)

// simFixture is a started simulator with one tenant, a read-write app and a
// read-only app, and a licensing client that shares the simulator's clock.
type simFixture struct {
	sim            *m365sim.Server
	clock          *fakeClock
	client         *licensing.Client
	tenant         string
	writer, reader azcore.TokenCredential
}

func newSimFixture(t *testing.T) *simFixture {
	t.Helper()
	clock := newFakeClock()
	sim, err := m365sim.New(m365sim.Options{Now: clock.Now, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	info, err := sim.AddTenant(m365sim.TenantConfig{Name: "Contoso"})
	if err != nil {
		t.Fatal(err)
	}
	apps := []m365sim.App{
		{ClientID: simWriter, Secret: simWriterSecret, Permissions: []string{m365sim.PermPolicyReadWrite}},
		{ClientID: simReader, Secret: simReaderSecret, Permissions: []string{m365sim.PermPolicyRead}},
	}
	for _, a := range apps {
		if err := sim.RegisterApp(info.ID, a); err != nil {
			t.Fatal(err)
		}
	}
	client, err := licensing.New(licensing.Options{Endpoint: sim.Endpoints().Licensing, HTTPClient: sim.HTTPClient(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &simFixture{
		sim: sim, clock: clock, client: client, tenant: info.ID,
		writer: simCredential(t, sim, info.ID, simWriter, simWriterSecret),
		reader: simCredential(t, sim, info.ID, simReader, simReaderSecret),
	}
}

// simCredential is a real azidentity client-secret credential that gets its
// tokens from the simulator's authority.
func simCredential(t *testing.T, sim *m365sim.Server, tenant, clientID, secret string) azcore.TokenCredential {
	t.Helper()
	opts := &azidentity.ClientSecretCredentialOptions{
		ClientOptions: policy.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: sim.Endpoints().AuthorityHost + "/"},
			Transport: sim.HTTPClient(),
		},
		DisableInstanceDiscovery: true,
	}
	cred, err := azidentity.NewClientSecretCredential(tenant, clientID, secret, opts)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// licensingRequests counts the tenant's requests that reached the simulated licensing API.
func (f *simFixture) licensingRequests() int {
	log := f.sim.Requests(f.tenant)
	return log.Counts["licensing GET"] + log.Counts["licensing PUT"]
}

func TestSimListAndSet(t *testing.T) {
	f := newSimFixture(t)
	ctx := context.Background()

	products, _, err := f.client.For(f.tenant, f.writer).ListProducts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := m365sim.DefaultProducts()
	if len(products) != len(want) {
		t.Fatalf("listed %d products, the tenant has %d", len(products), len(want))
	}
	for _, p := range products {
		if p.PolicyValue != licensing.ValueEnabled || p.PolicyID != "AllowSelfServicePurchase" || p.ProductName == "" {
			t.Errorf("unexpected item %+v", p)
		}
	}

	echo, err := f.client.For(f.tenant, f.writer).SetProduct(ctx, "CFQ7TTC0MM8R", licensing.ValueDisabled)
	if err != nil {
		t.Fatal(err)
	}
	if echo == nil || echo.ProductID != "CFQ7TTC0MM8R" || echo.PolicyValue != licensing.ValueDisabled {
		t.Errorf("the PUT's answer, decoded: %+v, want the product at Disabled", echo)
	}
	if got, _ := f.sim.Policy(f.tenant, "CFQ7TTC0MM8R"); got != licensing.ValueDisabled {
		t.Errorf("simulator holds %q after SetProduct, want Disabled", got)
	}
	// PUT is idempotent: the same value again succeeds and changes nothing.
	if _, err := f.client.For(f.tenant, f.writer).SetProduct(ctx, "CFQ7TTC0MM8R", licensing.ValueDisabled); err != nil {
		t.Errorf("repeating a PUT: %v", err)
	}
	products, _, err = f.client.For(f.tenant, f.reader).ListProducts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v := valueOf(products, "CFQ7TTC0MM8R"); v != licensing.ValueDisabled {
		t.Errorf("listed value after SetProduct: %q", v)
	}
}

func TestSimOfferTypes(t *testing.T) {
	f := newSimFixture(t)
	ctx := context.Background()
	if _, err := f.client.For(f.tenant, f.writer).SetOfferType(ctx, "SaaS", licensing.ValueDisabled); err != nil {
		t.Fatal(err)
	}
	items, _, err := f.client.For(f.tenant, f.writer).ListOfferTypes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, it := range items {
		got[it.OfferType] = it.PolicyValue
	}
	want := map[string]string{"SaaS": "Disabled", "POWERBIVISUALS": "Enabled", "DYNAMICSCE": "Enabled", "DYNAMICSBC": "Enabled"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("offer types by key (-want +got):\n%s", diff)
	}
}

func TestSimErrors(t *testing.T) {
	f := newSimFixture(t)
	ctx := context.Background()

	_, err := f.client.For(f.tenant, f.writer).SetProduct(ctx, "CFQ7TTC0XXXX", licensing.ValueDisabled)
	if e, ok := m365.AsError(err); !ok || e.Kind != m365.NotFound || !strings.Contains(e.Reason, "GetProductDetailsByProductIdAsync") {
		t.Errorf("unknown product: want NotFound with Microsoft's reason, got %v", err)
	}

	_, err = f.client.For(f.tenant, f.reader).SetProduct(ctx, "CFQ7TTC0MM8R", licensing.ValueDisabled)
	e, ok := m365.AsError(err)
	if !ok || e.Kind != m365.Forbidden || e.Code != "Forbidden" || e.Reason == "" {
		t.Fatalf("PUT with Policy.Read only: want Forbidden with code and reason, got %v", err)
	}
	if got, _ := f.sim.Policy(f.tenant, "CFQ7TTC0MM8R"); got != licensing.ValueEnabled {
		t.Errorf("a forbidden PUT changed the policy to %q", got)
	}
	entries := f.sim.Requests(f.tenant).Entries
	last := entries[len(entries)-1]
	if last.Method != "PUT" || last.Status != 403 || last.CorrelationID != e.CorrelationID {
		t.Errorf("the error's correlation id %q is not the one the service logged: %+v", e.CorrelationID, last)
	}
	if strings.Contains(err.Error(), simReaderSecret) {
		t.Errorf("error leaks the secret: %v", err)
	}
}

// TestSimThrottle checks the whole throttling path against the simulator: a
// 429 is reported with its Retry-After, no request reaches the service inside
// the window, and the call succeeds once the window has passed.
func TestSimThrottle(t *testing.T) {
	f := newSimFixture(t)
	ctx := context.Background()
	if err := f.sim.InjectFault(f.tenant, m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Status: 429, RetryAfter: "30", Count: 1}); err != nil {
		t.Fatal(err)
	}

	_, _, err := f.client.For(f.tenant, f.writer).ListProducts(ctx)
	if m365.KindOf(err) != m365.Throttled || m365.RetryAfterOf(err) != 30*time.Second {
		t.Fatalf("want Throttled for 30s, got %v", err)
	}
	sent := f.licensingRequests()

	f.clock.Advance(29 * time.Second)
	_, err = f.client.For(f.tenant, f.writer).SetProduct(ctx, "CFQ7TTC0MM8R", licensing.ValueDisabled)
	if m365.KindOf(err) != m365.Throttled || m365.RetryAfterOf(err) != time.Second {
		t.Errorf("inside the window: want Throttled for the remaining 1s, got %v", err)
	}
	if got := f.licensingRequests(); got != sent {
		t.Errorf("%d request(s) reached the service inside the Retry-After window", got-sent)
	}

	f.clock.Advance(time.Second)
	if _, err := f.client.For(f.tenant, f.writer).SetProduct(ctx, "CFQ7TTC0MM8R", licensing.ValueDisabled); err != nil {
		t.Errorf("after the window: %v", err)
	}
	log := f.sim.Requests(f.tenant)
	if log.EarlyRequests != 0 {
		t.Errorf("the simulator saw %d request(s) before Retry-After passed", log.EarlyRequests)
	}
	if got := log.Counts["licensing PUT"]; got != 1 {
		t.Errorf("want exactly one PUT to reach the service, got %d", got)
	}
}

// valueOf returns the policy value of the product productID in items.
func valueOf(items []licensing.Item, productID string) string {
	for _, it := range items {
		if it.ProductID == productID {
			return it.PolicyValue
		}
	}
	return ""
}
