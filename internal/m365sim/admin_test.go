package m365sim

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAdminHTTPRoundTrip(t *testing.T) {
	f := newFixture(t, nil)
	base := f.sim.AdminURL() + "/_sim"
	created := f.do(t, "POST", base+"/tenants", "", map[string]any{"id": "AAAAAAAA-0000-0000-0000-000000000001", "name": "Fabrikam", "withSampleDirectory": true}, nil)
	if created.status != http.StatusCreated || created.json(t)["domain"] != "fabrikam.onmicrosoft.com" {
		t.Fatalf("create tenant: %d %s", created.status, created.body)
	}
	tid := "aaaaaaaa-0000-0000-0000-000000000001"
	f.tenant = tid
	type step struct {
		method, path string
		body         any
		status       int
	}
	steps := []step{
		{"POST", "/apps", map[string]any{"clientId": "app1", "secret": "pw-1", "permissions": AllPermissions}, 201},
		{"POST", "/delegated-users", map[string]any{"clientId": "app1", "roles": []string{"Global Administrator"}}, 201},
		{"PUT", "/products/CFQ7TTC0MM8R", map[string]string{"policyValue": "Disabled"}, 200},
		{"PUT", "/products/CFQ7TTC0MM8R", map[string]string{"policyValue": "Off"}, 400},
		{"PUT", "/products/NOPE", map[string]string{"policyValue": "Disabled"}, 404},
		{"POST", "/products", map[string]string{"productId": "CFQ7TTC0ZZZZ", "productName": "New thing"}, 201},
		{"POST", "/products", map[string]string{"productId": "CFQ7TTC0ZZZZ"}, 409},
		{"PUT", "/offerTypes/SaaS", map[string]string{"policyValue": "Disabled"}, 200},
		{"POST", "/purchases", map[string]any{"skuPartNumber": SkuCopilot}, 403},
		{"POST", "/faults", map[string]any{"endpoint": "licensing", "status": 429, "retryAfter": "1", "latency": "1ms", "count": 1}, 201},
		{"DELETE", "/faults", nil, 204},
		{"DELETE", "/requests", nil, 204},
		{"GET", "/nothing", nil, 404},
	}
	for _, s := range steps {
		if r := f.do(t, s.method, f.admin(s.path), "", s.body, nil); r.status != s.status {
			t.Errorf("%s %s: want %d, got %d %s", s.method, s.path, s.status, r.status, r.body)
		}
	}
	if got := f.do(t, "GET", f.admin("/products/CFQ7TTC0MM8R"), "", nil, nil).json(t); got["policyValue"] != "Disabled" {
		t.Errorf("policy read back: %v", got)
	}
	bought := f.do(t, "POST", f.admin("/purchases"), "", map[string]any{"skuPartNumber": SkuPowerBIPro, "userPrincipalName": "zoe@fabrikam.onmicrosoft.com"}, nil)
	if bought.status != 201 {
		t.Fatalf("purchase: %d %s", bought.status, bought.body)
	}
	sid := bought.json(t)["id"].(string)
	if r := f.do(t, "POST", f.admin("/subscriptions/"+sid+"/renew"), "", nil, nil); r.status != 200 {
		t.Errorf("renew: %d %s", r.status, r.body)
	}
	if r := f.do(t, "POST", f.admin("/subscriptions/"+sid+"/takeover"), "", nil, nil); r.status != http.StatusConflict {
		t.Errorf("takeover without org seats: want 409, got %d %s", r.status, r.body)
	}
	if r := f.do(t, "POST", f.admin("/subscriptions/"+sid+"/cancel"), "", nil, nil); r.status != 200 || r.json(t)["status"] != "Warning" {
		t.Errorf("cancel: %d %s", r.status, r.body)
	}
	// The app registered over HTTP works on the wire, and the log shows it.
	tok := f.token(t, "app1", "pw-1", ResourceLicensing+"/.default")
	if r := f.do(t, "GET", f.licensing("/v1.0/policies/AllowSelfServicePurchase/products/CFQ7TTC0ZZZZ"), tok, nil, nil); r.status != 200 {
		t.Errorf("product added over HTTP: %d", r.status)
	}
	var log RequestLog
	r := f.do(t, "GET", f.admin("/requests"), "", nil, nil)
	if err := jsonUnmarshal(r.body, &log); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"authority POST": 1, "authority POST token": 1, "licensing GET": 1, "licensing GET product": 1}
	if diff := cmp.Diff(want, log.Counts); diff != "" {
		t.Errorf("request log over HTTP (-want +got):\n%s", diff)
	}
	if r := f.do(t, "GET", base+"/tenants/ffffffff-0000-0000-0000-000000000000/requests", "", nil, nil); r.status != 404 {
		t.Errorf("unknown tenant: %d", r.status)
	}
}
