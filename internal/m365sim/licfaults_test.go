package m365sim

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

const copilotPath = productsPath + "/CFQ7TTC0MM8R"

// listed returns a product's value as the licensing list shows it.
func (f *fixture) listed(t *testing.T, tok, productID string) string {
	t.Helper()
	for _, it := range f.page(t, f.licensing(productsPath), tok).items {
		if m := it.(map[string]any); m["productId"] == productID {
			return m["policyValue"].(string)
		}
	}
	return "(absent)"
}

func TestPutNotApplied(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.licensingToken(t)
	for answer, answered := range map[string]string{AnswerNotApplied: PolicyDisabled, AnswerNotAppliedOld: PolicyEnabled} {
		if err := f.sim.InjectFault(f.tenant, Fault{Endpoint: EndpointLicensing, Answer: answer, Count: 1}); err != nil {
			t.Fatal(err)
		}
		if r := f.listed(t, tok, "CFQ7TTC0MM8R"); r != PolicyEnabled {
			t.Fatalf("a GET does not use up a PUT fault: %s", r)
		}
		r := f.do(t, "PUT", f.licensing(copilotPath), tok, map[string]string{"policyValue": PolicyDisabled}, nil)
		if r.status != http.StatusOK || r.json(t)["policyValue"] != answered {
			t.Errorf("%s: 200 answering %s, got %d %s", answer, answered, r.status, r.body)
		}
		if got, _ := f.sim.Policy(f.tenant, "CFQ7TTC0MM8R"); got != PolicyEnabled || f.listed(t, tok, "CFQ7TTC0MM8R") != PolicyEnabled {
			t.Errorf("%s: the value must not change; it is %s", answer, got)
		}
	}
}

func TestStaleReadsAfterPut(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.licensingToken(t)
	inj := f.do(t, "POST", f.admin("/faults"), "", map[string]any{"endpoint": "licensing", "answer": "staleReads", "staleFor": "30s", "count": 1}, nil)
	if inj.status != http.StatusCreated {
		t.Fatalf("inject: %d %s", inj.status, inj.body)
	}
	if r := f.do(t, "PUT", f.licensing(copilotPath), tok, map[string]string{"policyValue": PolicyDisabled}, nil); r.status != 200 || r.json(t)["policyValue"] != PolicyDisabled {
		t.Fatalf("the PUT is applied and says so: %d %s", r.status, r.body)
	}
	if got, _ := f.sim.Policy(f.tenant, "CFQ7TTC0MM8R"); got != PolicyDisabled {
		t.Errorf("the truth is the new value: %s", got)
	}
	one := f.do(t, "GET", f.licensing(copilotPath), tok, nil, nil).json(t)["policyValue"]
	if listed := f.listed(t, tok, "CFQ7TTC0MM8R"); listed != PolicyEnabled || one != PolicyEnabled {
		t.Errorf("for 30 s reads show the old value: list %s, GET %v", listed, one)
	}
	f.clock.Advance(30 * time.Second)
	if listed := f.listed(t, tok, "CFQ7TTC0MM8R"); listed != PolicyDisabled {
		t.Errorf("after 30 s reads are consistent: %s", listed)
	}
}

func TestNewProductReplicationLag(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.licensingToken(t)
	r := f.do(t, "POST", f.admin("/products"), "", map[string]any{"productId": "CFQ7TTC0NEW1", "productName": "Agents", "replicationLag": "10m"}, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("add product: %d %s", r.status, r.body)
	}
	if err := f.sim.AddProduct(f.tenant, Product{ID: "CFQ7TTC0NEW2", ReplicationLag: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got := f.listed(t, tok, "CFQ7TTC0NEW1"); got != PolicyEnabled {
		t.Fatalf("the list shows the new product at once, Enabled: %s", got)
	}
	put := func(id string) response {
		return f.do(t, "PUT", f.licensing(productsPath+"/"+id), tok, map[string]string{"policyValue": PolicyDisabled}, nil)
	}
	if r := put("CFQ7TTC0NEW1"); r.status != http.StatusNotFound || r.json(t)["errorCode"] != "Unknown" {
		t.Errorf("a PUT during the replication lag: want Microsoft's 404, got %d %s", r.status, r.body)
	}
	f.clock.Advance(10 * time.Minute)
	if r := put("CFQ7TTC0NEW1"); r.status != http.StatusOK {
		t.Errorf("after the lag the PUT works: %d %s", r.status, r.body)
	}
	if r := put("CFQ7TTC0NEW2"); r.status != http.StatusNotFound {
		t.Errorf("the Go API's lag of an hour still holds: %d", r.status)
	}
}

func TestProxyErrorPages(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.licensingToken(t)
	if err := f.sim.InjectFault(f.tenant, Fault{Endpoint: EndpointLicensing, Status: http.StatusBadGateway, Answer: AnswerProxyHTML, Count: 1}); err != nil {
		t.Fatal(err)
	}
	r := f.do(t, "GET", f.licensing(productsPath), tok, nil, nil)
	if r.status != http.StatusBadGateway || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "<h1>502 Bad Gateway</h1>") {
		t.Errorf("a proxy's HTML page: %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	if err := f.sim.InjectFault(f.tenant, Fault{Endpoint: EndpointLicensing, Status: http.StatusForbidden, Answer: AnswerEchoHeaders, Count: 1}); err != nil {
		t.Fatal(err)
	}
	r = f.do(t, "GET", f.licensing(productsPath), tok, nil, map[string]string{"X-Probe": "p1"})
	if body := string(r.body); r.status != http.StatusForbidden || !strings.Contains(body, "Authorization: Bearer "+tok) || !strings.Contains(body, "X-Probe: p1") {
		t.Errorf("an echoing proxy puts the bearer token in the body: %d %s", r.status, body)
	}
}
