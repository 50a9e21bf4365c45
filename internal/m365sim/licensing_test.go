package m365sim

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLicensingAPI(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.sim.RegisterApp(f.tenant, App{ClientID: "reader", Secret: "reader-secret", Permissions: []string{PermPolicyRead, PermOrganizationRead}}); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.RegisterApp(f.tenant, App{ClientID: "nothing", Secret: "nothing-secret"}); err != nil {
		t.Fatal(err)
	}
	rw := f.licensingToken(t)
	reader := f.token(t, "reader", "reader-secret", ResourceLicensing+"/.default")
	none := f.token(t, "nothing", "nothing-secret", ResourceLicensing+"/.default")
	graphTok := f.graphToken(t)
	delegated := func(role string) string {
		rt, err := f.sim.RegisterDelegatedUser(f.tenant, "admin-app", []string{role})
		if err != nil {
			t.Fatal(err)
		}
		r := f.tokenRequest(t, f.tenant, url.Values{"grant_type": {"refresh_token"}, "client_id": {"admin-app"}, "refresh_token": {rt}, "scope": {ResourceLicensing + "/.default"}})
		return r.json(t)["access_token"].(string)
	}
	globalReader, billingAdmin := delegated(RoleGlobalReader), delegated(RoleBillingAdmin)
	const products = "/v1.0/policies/AllowSelfServicePurchase/products"
	const copilot = products + "/CFQ7TTC0MM8R"

	type want struct {
		Status int
		Body   map[string]any
	}
	item := func(value string) map[string]any {
		return map[string]any{"policyId": "AllowSelfServicePurchase", "policyValue": value, "productName": "Microsoft 365 Copilot", "productId": "CFQ7TTC0MM8R"}
	}
	cases := []struct {
		name, reason, method, path, token string
		body                              any
		want                              want
	}{
		{"get product", "one product in the documented item shape", "GET", copilot, rw, nil, want{200, item("Enabled")}},
		{"put product", "a PUT with Policy.ReadWrite changes the value", "PUT", copilot, rw, map[string]string{"policyValue": "Disabled"}, want{200, item("Disabled")}},
		{"get after put", "the change is visible", "GET", copilot, reader, nil, want{200, item("Disabled")}},
		{"unknown product", "404 errorCode Unknown", "GET", products + "/CFQ7TTC0XXXX", rw, nil,
			want{404, map[string]any{"errorCode": "Unknown", "reason": "GetProductDetailsByProductIdAsync failed for productId CFQ7TTC0XXXX: the product was not found."}}},
		{"put unknown product", "404 for a PUT too", "PUT", products + "/CFQ7TTC0XXXX", rw, map[string]string{"policyValue": "Disabled"},
			want{404, map[string]any{"errorCode": "Unknown", "reason": "GetProductDetailsByProductIdAsync failed for productId CFQ7TTC0XXXX: the product was not found."}}},
		{"bad value", "400 BadRequest for an unknown policy value", "PUT", copilot, rw, map[string]string{"policyValue": "Maybe"},
			want{400, map[string]any{"errorCode": "BadRequest", "reason": "Invalid policy value 'Maybe'. Valid values are Enabled, Disabled and OnlyTrialsWithoutPaymentMethod."}}},
		{"no content type", "415 without application/json", "PUT", copilot, rw, `{"policyValue":"Enabled"}`,
			want{415, map[string]any{"errorCode": "UnsupportedMediaType", "reason": "The request Content-Type must be application/json."}}},
		{"bad scope", "400 Invalid scope.", "GET", products + "?scope=nonsense", rw, nil, want{400, map[string]any{"errorCode": "BadRequest", "reason": "Invalid scope."}}},
		{"reader put", "Policy.Read cannot write", "PUT", copilot, reader, map[string]string{"policyValue": "Enabled"},
			want{403, map[string]any{"errorCode": "Forbidden", "reason": "The caller does not have the permission or role required for this operation."}}},
		{"no permission", "an app without licensing permissions cannot read", "GET", copilot, none, nil,
			want{403, map[string]any{"errorCode": "Forbidden", "reason": "The caller does not have the permission or role required for this operation."}}},
		{"global reader get", "Global Reader can read", "GET", copilot, globalReader, nil, want{200, item("Disabled")}},
		{"global reader put", "Global Reader cannot write", "PUT", copilot, globalReader, map[string]string{"policyValue": "Enabled"},
			want{403, map[string]any{"errorCode": "Forbidden", "reason": "The caller does not have the permission or role required for this operation."}}},
		{"billing admin put", "Billing Administrator can write", "PUT", copilot, billingAdmin, map[string]string{"policyValue": "OnlyTrialsWithoutPaymentMethod"},
			want{200, item("OnlyTrialsWithoutPaymentMethod")}},
		{"graph token", "a token for another resource is 401", "GET", copilot, graphTok, nil,
			want{401, map[string]any{"errorCode": "InvalidAuthenticationToken", "reason": "Access token validation failure. Invalid audience."}}},
		{"no token", "no token is 401", "GET", copilot, "", nil,
			want{401, map[string]any{"errorCode": "InvalidAuthenticationToken", "reason": "Authorization header is missing or is not a Bearer token."}}},
	}
	for _, tc := range cases { // ordered: later cases see earlier writes
		r := f.do(t, tc.method, f.licensing(tc.path), tc.token, tc.body, nil)
		got := want{Status: r.status, Body: r.json(t)}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: %s (-want +got):\n%s", tc.name, tc.reason, diff)
		}
	}
	if v, _ := f.sim.Policy(f.tenant, "CFQ7TTC0MM8R"); v != PolicyTrialsOnly {
		t.Errorf("Policy() = %q after the Billing Administrator's PUT", v)
	}
}

func TestLicensingLists(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.licensingToken(t)
	list := func(query string) []any {
		r := f.do(t, "GET", f.licensing("/v1.0/policies/AllowSelfServicePurchase/products"+query), tok, nil, nil)
		if r.status != 200 {
			t.Fatalf("list %s: %d %s", query, r.status, r.body)
		}
		return r.json(t)["items"].([]any)
	}
	if got := len(list("")); got != len(DefaultProducts()) {
		t.Errorf("products: got %d items, want %d", got, len(DefaultProducts()))
	}
	if got := len(list("?scope=product")); got != len(DefaultProducts()) {
		t.Errorf("scope=product: got %d items", got)
	}
	if err := f.sim.AddProduct(f.tenant, Product{ID: "CFQ7TTC0NEW1", Name: "Brand new"}); err != nil {
		t.Fatal(err)
	}
	items := list("")
	last := items[len(items)-1].(map[string]any)
	if last["productId"] != "CFQ7TTC0NEW1" || last["policyValue"] != "Enabled" {
		t.Errorf("a new product must appear Enabled: %v", last)
	}
	// Offer types.
	r := f.do(t, "PUT", f.licensing("/v1.0/policies/AllowSelfServicePurchase/offerTypes/SaaS"), tok, map[string]string{"policyValue": "Disabled"}, nil)
	if r.status != 200 {
		t.Fatalf("put offer type: %d %s", r.status, r.body)
	}
	var got []string
	for _, it := range list("?scope=OfferType") {
		m := it.(map[string]any)
		got = append(got, m["offerType"].(string)+"="+m["policyValue"].(string)+"/"+m["productId"].(string))
	}
	want := []string{"SaaS=Disabled/SaaS", "POWERBIVISUALS=Enabled/POWERBIVISUALS", "DYNAMICSCE=Enabled/DYNAMICSCE", "DYNAMICSBC=Enabled/DYNAMICSBC"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("offer types (-want +got):\n%s", diff)
	}
	pol := f.do(t, "GET", f.licensing("/v1.0/policies"), tok, nil, nil).json(t)["items"].([]any)[0].(map[string]any)
	if pol["id"] != PolicyID || pol["defaultValue"] != "Enabled" {
		t.Errorf("policies: %v", pol)
	}
}

func TestExpiredTokenAndCorrelationID(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.TokenLifetime = 5 * time.Minute })
	tok := f.licensingToken(t)
	hdr := map[string]string{"x-ms-correlation-id": "c0ffee00-0000-0000-0000-000000000001"}
	r := f.do(t, "GET", f.licensing("/v1.0/policies/AllowSelfServicePurchase/products"), tok, nil, hdr)
	if r.status != 200 || r.header.Get("x-ms-correlation-id") != hdr["x-ms-correlation-id"] {
		t.Errorf("want 200 echoing the correlation id, got %d %q", r.status, r.header.Get("x-ms-correlation-id"))
	}
	f.clock.Advance(5*time.Minute + time.Second)
	r = f.do(t, "GET", f.licensing("/v1.0/policies/AllowSelfServicePurchase/products"), tok, nil, nil)
	if r.status != http.StatusUnauthorized || r.json(t)["reason"] != "Lifetime validation failed, the token is expired." {
		t.Errorf("expired token: want 401 expired, got %d %s", r.status, r.body)
	}
	log := f.sim.Requests(f.tenant)
	var corr []string
	for _, e := range log.Entries {
		if e.Endpoint == EndpointLicensing {
			corr = append(corr, e.CorrelationID)
		}
	}
	if diff := cmp.Diff([]string{hdr["x-ms-correlation-id"], ""}, corr); diff != "" {
		t.Errorf("logged correlation ids (-want +got):\n%s", diff)
	}
}
