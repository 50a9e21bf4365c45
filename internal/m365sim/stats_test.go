package m365sim

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFleetRequestStats(t *testing.T) {
	f := newFixture(t, nil)
	second, err := f.sim.AddTenant(TenantConfig{Name: "Fabrikam"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sim.RegisterApp(second.ID, App{ClientID: testClient, Secret: testSecret, Permissions: AllPermissions}); err != nil {
		t.Fatal(err)
	}
	tok := f.licensingToken(t)
	f.do(t, "GET", f.licensing(productsPath), tok, nil, nil)
	first := f.tenant
	f.tenant = second.ID
	tok2 := f.licensingToken(t)
	f.tenant = first
	if err := f.sim.InjectFault(second.ID, Fault{Endpoint: EndpointLicensing, Status: http.StatusTooManyRequests, RetryAfter: "60", Count: 1}); err != nil {
		t.Fatal(err)
	}
	f.do(t, "GET", f.licensing(productsPath), tok2, nil, nil)
	f.do(t, "PUT", f.licensing(copilotPath), tok2, map[string]string{"policyValue": "Disabled"}, nil) // early
	f.do(t, "GET", f.licensing(productsPath), "not-a-token", nil, nil)                                // unattributed

	var got RequestStats
	if err := jsonUnmarshal(f.do(t, "GET", f.sim.AdminURL()+"/_sim/requests", "", nil, nil).body, &got); err != nil {
		t.Fatal(err)
	}
	want := RequestStats{Counts: map[string]int{
		"authority POST": 2, "authority POST token": 2,
		"licensing GET": 2, "licensing GET products": 2,
		"licensing PUT": 1, "licensing PUT product": 1,
	}, EarlyRequests: 1, Throttled: 1, Failed: map[string]int{"licensing GET": 1}, Unattributed: 1, Tenants: 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /_sim/requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, f.sim.RequestStats()); diff != "" {
		t.Errorf("RequestStats (-want +got):\n%s", diff)
	}
	if r := f.do(t, "DELETE", f.sim.AdminURL()+"/_sim/requests", "", nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE /_sim/requests: %d", r.status)
	}
	if diff := cmp.Diff(RequestStats{Counts: map[string]int{}, Failed: map[string]int{}, Tenants: 2}, f.sim.RequestStats()); diff != "" {
		t.Errorf("after the reset (-want +got):\n%s", diff)
	}
}
