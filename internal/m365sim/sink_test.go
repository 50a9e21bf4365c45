package m365sim

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// noFollow is the fixture's client with redirects not followed.
func (f *fixture) noFollow() *http.Client {
	c := f.sim.HTTPClient()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func TestRedirectFaultsAndLeakSink(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.licensingToken(t)
	copilot := productsPath + "/CFQ7TTC0MM8R"
	if err := f.sim.InjectFault(f.tenant, Fault{Endpoint: EndpointLicensing, Method: "PUT", Status: http.StatusFound, Count: 1}); err != nil {
		t.Fatal(err)
	}

	// A client that does not follow sees the 302 and where it points.
	plain := f.client
	f.client = f.noFollow()
	r := f.do(t, "PUT", f.licensing(copilot), tok, map[string]string{"policyValue": "Disabled"}, nil)
	f.client = plain
	if r.status != http.StatusFound || r.header.Get("Location") != f.sim.LeakSinkURL()+copilot {
		t.Fatalf("302 to the sink: %d Location %q (sink %s)", r.status, r.header.Get("Location"), f.sim.LeakSinkURL())
	}
	if n := len(f.sim.LeakedRequests()); n != 0 {
		t.Fatalf("nothing follows, nothing leaks: %d", n)
	}

	// Go's default client follows: the PUT becomes a GET to plain http on
	// the same host, with the bearer token, and "succeeds".
	if err := f.sim.InjectFault(f.tenant, Fault{Endpoint: EndpointLicensing, Method: "PUT", Status: http.StatusFound, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, "PUT", f.licensing(copilot), tok, map[string]string{"policyValue": "Disabled"}, nil); r.status != http.StatusOK {
		t.Errorf("the sink answers 200: %d", r.status)
	}
	// A 307 from the token endpoint re-posts the client secret.
	if err := f.sim.InjectFault(f.tenant, Fault{Endpoint: EndpointAuthority, Method: "POST", Status: http.StatusTemporaryRedirect, Count: 1}); err != nil {
		t.Fatal(err)
	}
	f.tokenRequest(t, f.tenant, url.Values{"grant_type": {"client_credentials"}, "client_id": {testClient}, "client_secret": {testSecret}, "scope": {ResourceGraph + "/.default"}})

	want := []LeakedRequest{
		{Method: "GET", Path: copilot, Authorization: true, CredentialFields: []string{}},
		{Method: "POST", Path: "/" + f.tenant + "/oauth2/v2.0/token", CredentialFields: []string{"client_secret"}},
	}
	if diff := cmp.Diff(want, f.sim.LeakedRequests(), cmpopts.IgnoreFields(LeakedRequest{}, "Time", "Host")); diff != "" {
		t.Errorf("what reached the sink (-want +got):\n%s", diff)
	}

	var sink LeakSink
	if err := jsonUnmarshal(f.do(t, "GET", f.sim.AdminURL()+"/_sim/leak-sink", "", nil, nil).body, &sink); err != nil || sink.URL != f.sim.LeakSinkURL() || len(sink.Requests) != 2 {
		t.Errorf("GET /_sim/leak-sink: %+v %v", sink, err)
	}
	if r := f.do(t, "DELETE", f.sim.AdminURL()+"/_sim/leak-sink", "", nil, nil); r.status != http.StatusNoContent || len(f.sim.LeakedRequests()) != 0 {
		t.Errorf("DELETE /_sim/leak-sink: %d, %d left", r.status, len(f.sim.LeakedRequests()))
	}
	if got, _ := f.sim.Policy(f.tenant, "CFQ7TTC0MM8R"); got != PolicyEnabled {
		t.Errorf("a redirected PUT never reached the service, yet the policy is %s", got)
	}
}

func TestRedirectLocationTemplates(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.graphToken(t)
	f.client = f.noFollow()
	sinkPort := f.sim.LeakSinkURL()[strings.LastIndex(f.sim.LeakSinkURL(), ":")+1:]
	cases := []struct{ location, want string }{
		{"http://{host}:{sinkPort}{requestURI}", "http://127.0.0.1:" + sinkPort + "/v1.0/subscribedSkus?$select=skuId"},
		{"https://login.example.net/moved", "https://login.example.net/moved"},
	}
	for _, tc := range cases {
		if err := f.do(t, "POST", f.admin("/faults"), "", map[string]any{"endpoint": "graph", "status": 301, "location": tc.location, "count": 1}, nil); err.status != http.StatusCreated {
			t.Fatalf("inject: %d %s", err.status, err.body)
		}
		r := f.do(t, "GET", f.graph("/v1.0/subscribedSkus?$select=skuId"), tok, nil, nil)
		if r.status != http.StatusMovedPermanently || r.header.Get("Location") != tc.want {
			t.Errorf("%s: %d Location %q, want %q", tc.location, r.status, r.header.Get("Location"), tc.want)
		}
	}
}
