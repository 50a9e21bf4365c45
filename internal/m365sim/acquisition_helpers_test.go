package m365sim

import (
	"net/url"
	"strings"
	"testing"
)

// appGraphToken registers an app holding exactly perms and returns its Graph token.
func (f *fixture) appGraphToken(t *testing.T, perms ...string) string {
	t.Helper()
	id := "app-" + strings.ReplaceAll(strings.Join(perms, "+"), " ", "")
	if err := f.sim.RegisterApp(f.tenant, App{ClientID: id, Secret: "pw", Permissions: perms}); err != nil {
		t.Fatal(err)
	}
	return f.token(t, id, "pw", ResourceGraph+"/.default")
}

// delegatedGraphToken returns a delegated Graph token of a new user holding roles.
func (f *fixture) delegatedGraphToken(t *testing.T, roles ...string) string {
	t.Helper()
	rt, err := f.sim.RegisterDelegatedUser(f.tenant, "admin-tool", roles)
	if err != nil {
		t.Fatal(err)
	}
	r := f.tokenRequest(t, f.tenant, url.Values{"grant_type": {"refresh_token"}, "client_id": {"admin-tool"},
		"refresh_token": {rt}, "scope": {ResourceGraph + "/.default offline_access"}})
	if r.status != 200 {
		t.Fatalf("redeem: %d %s", r.status, r.body)
	}
	return r.json(t)["access_token"].(string)
}

// graphError returns the code of a Graph error answer.
func graphError(t *testing.T, r response) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}
