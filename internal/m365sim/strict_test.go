package m365sim

import (
	"net/http"
	"net/url"
	"testing"
)

func TestGraphRefusesWhatMicrosoftRefuses(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.graphToken(t)
	users, _ := f.sim.Users(f.tenant)
	cases := []struct {
		path, code string
	}{
		{"/v1.0/subscribedSkus?$filter=skuPartNumber eq 'SPB'", "Request_UnsupportedQuery"},
		{"/v1.0/subscribedSkus?$top=1", "Request_UnsupportedQuery"},
		{"/v1.0/subscribedSkus?$select=skuId,nonsense", "Request_BadRequest"},
		{"/v1.0/users/" + users[0].ID + "?$select=id,licenceDetails", "Request_BadRequest"},
		{"/v1.0/directory/subscriptions?$select=status,owner", "Request_BadRequest"},
	}
	for _, tc := range cases {
		r := f.do(t, "GET", f.graph(tc.path), tok, nil, nil)
		e, _ := r.json(t)["error"].(map[string]any)
		if r.status != http.StatusBadRequest || e["code"] != tc.code || e["message"] == "" {
			t.Errorf("%s: want 400 %s, got %d %s", tc.path, tc.code, r.status, r.body)
		}
	}
	for _, ok := range []string{
		"/v1.0/subscribedSkus?$select=skuId,skuPartNumber,prepaidUnits,consumedUnits,subscriptionIds,accountId,accountName,appliesTo,capabilityStatus",
		"/v1.0/users/" + users[0].ID + "?$select=id,userPrincipalName,assignedLicenses,licenseAssignmentStates,accountEnabled",
		"/v1.0/directory/subscriptions?$select=id,status&$top=1",
	} {
		if r := f.do(t, "GET", f.graph(ok), tok, nil, nil); r.status != http.StatusOK {
			t.Errorf("%s: documented query, want 200, got %d %s", ok, r.status, r.body)
		}
	}
}

func TestTokenEndpointRefusesV1Resource(t *testing.T) {
	f := newFixture(t, nil)
	r := f.tokenRequest(t, f.tenant, url.Values{"grant_type": {"client_credentials"}, "client_id": {testClient}, "client_secret": {testSecret},
		"resource": {ResourceGraph}, "scope": {ResourceGraph + "/.default"}})
	codes, _ := r.json(t)["error_codes"].([]any)
	if r.status != http.StatusBadRequest || r.json(t)["error"] != "invalid_request" || len(codes) != 1 || codes[0] != float64(901002) {
		t.Errorf("resource on the v2 endpoint: want 400 AADSTS901002, got %d %s", r.status, r.body)
	}
}

func TestDiagnosticHeaders(t *testing.T) {
	f := newFixture(t, nil)
	gtok, ltok := f.graphToken(t), f.licensingToken(t)

	ok := f.do(t, "GET", f.graph("/v1.0/subscribedSkus"), gtok, nil, map[string]string{"client-request-id": "c-1"})
	if ok.header.Get("request-id") == "" || ok.header.Get("client-request-id") != "c-1" {
		t.Errorf("Graph: request-id and the client's client-request-id: %v", ok.header)
	}
	bad := f.do(t, "GET", f.graph("/v1.0/subscribedSkus"), "", nil, nil)
	inner, _ := bad.json(t)["error"].(map[string]any)["innerError"].(map[string]any)
	if bad.status != http.StatusUnauthorized || inner["request-id"] == "" || inner["request-id"] != bad.header.Get("request-id") || bad.header.Get("client-request-id") != bad.header.Get("request-id") {
		t.Errorf("Graph errors carry the ids, innerError names the header's: %v %s", bad.header, bad.body)
	}

	if r := f.do(t, "GET", f.licensing(productsPath), ltok, nil, map[string]string{correlationHeader: "corr-1"}); r.header.Get(correlationHeader) != "corr-1" {
		t.Errorf("licensing echoes x-ms-correlation-id: %v", r.header)
	}
	if r := f.do(t, "GET", f.licensing(productsPath), ltok, nil, nil); len(r.header.Get(correlationHeader)) != 36 {
		t.Errorf("licensing names a correlation id when the client sent none: %v", r.header)
	}

	req, _ := http.NewRequest("POST", f.sim.Endpoints().AuthorityHost+"/"+f.tenant+"/oauth2/v2.0/token", nil)
	req.Header.Set("client-request-id", "c-2")
	req.Header.Set("return-client-request-id", "true")
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = jsonDecode(resp, &body)
	if id := resp.Header.Get("x-ms-request-id"); id == "" || body["trace_id"] != id || body["correlation_id"] != "c-2" || resp.Header.Get("client-request-id") != "c-2" {
		t.Errorf("Entra: x-ms-request-id is the trace id, client-request-id the correlation id: %v %v", resp.Header, body)
	}
}
