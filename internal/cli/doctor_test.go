package cli

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// doctor names the step that fails and its fix, exits 1 when a required
// step fails, changes nothing and prints no secret or token.
func TestDoctor(t *testing.T) {
	f := newFixture(t)
	cases := map[string]struct {
		app      func() testApp
		code     int
		want     []string
		notWrite bool
	}{
		"every permission": {
			app:  func() testApp { return mixedTenant(t, f, m365sim.AllPermissions...) },
			code: ExitOK,
			want: []string{"PASS  token for the licensing API", "PASS  licensing service principal", "PASS  read the product list", "PASS  write permission", "PASS  token for Microsoft Graph", "PASS  read subscriptions", "Every required step passed."},
		},
		"read-only app": {
			app:  func() testApp { return mixedTenant(t, f, readerPerms...) },
			code: ExitError,
			want: []string{"PASS  read the product list", "FAIL  write permission", "Forbidden (HTTP 403)",
				"fix: grant the app the application permission Policy.ReadWrite.AllowSelfServicePurchase", "1 required step failed: write permission."},
		},
		"wrong secret": {
			app: func() testApp {
				a := mixedTenant(t, f, m365sim.AllPermissions...)
				a.secretFile = f.write(t, "wrong-"+a.clientID[:8], "not-the-secret")
				return a
			},
			code:     ExitError,
			want:     []string{"FAIL  token for the licensing API", "the client secret is wrong", "AADSTS7000215", "fix: use the secret's Value (not its Secret ID)", "SKIP  read the product list", "1 required step failed: token for the licensing API."},
			notWrite: true,
		},
		"no licensing service principal": {
			app: func() testApp {
				return f.newTenant(t, m365sim.TenantConfig{WithoutServicePrincipals: []string{m365sim.ResourceLicensing}}, m365sim.AllPermissions...)
			},
			code:     ExitError,
			want:     []string{"SKIP  token for the licensing API", "FAIL  licensing service principal", "AADSTS500011", "fix: an admin creates it once: New-MgServicePrincipal -AppId aeb86249-8ea3-49e2-900b-54cc8e308f85", "PASS  token for Microsoft Graph", "1 required step failed: licensing service principal."},
			notWrite: true,
		},
		"graph permission missing only warns": {
			app:  func() testApp { return mixedTenant(t, f, m365sim.PermPolicyReadWrite) },
			code: ExitOK,
			want: []string{"PASS  write permission", "WARN  read subscriptions", "fix: grant the app the Microsoft Graph application permission Organization.Read.All"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := tc.app()
			before, _ := f.sim.Products(a.tenant)
			r := runArgs(t, append(append([]string{"doctor"}, a.creds()...), f.endpoints()...)...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d", r.code, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if t.Failed() {
				t.Log(r)
			}
			assertNoSecrets(t, r, a.secret)
			after, _ := f.sim.Products(a.tenant)
			if len(before) != len(after) {
				t.Fatal("products changed")
			}
			for i := range before {
				if before[i].PolicyValue != after[i].PolicyValue {
					t.Errorf("doctor changed %s from %s to %s", before[i].ID, before[i].PolicyValue, after[i].PolicyValue)
				}
			}
			if puts := f.sim.Requests(a.tenant).Counts["licensing PUT"]; tc.notWrite && puts != 0 {
				t.Errorf("%d PUTs without a token", puts)
			}
		})
	}
}

// Errors are one line that says what to do.
func TestErrorsSayWhatToDo(t *testing.T) {
	f := newFixture(t)
	a := mixedTenant(t, f, m365sim.AllPermissions...)
	unknown := a
	unknown.tenant = uuid.NewString()
	cases := map[string]struct {
		args []string
		want string
	}{
		"unknown tenant": {append(append([]string{"export"}, unknown.creds()...), f.endpoints()...),
			"error: Entra refused the token request: the tenant does not exist (AADSTS90002: Tenant '" + unknown.tenant + "' not found.): check --tenant / spec.tenantID"},
		"no credential flag": {append([]string{"export", "--tenant", a.tenant, "--client-id", a.clientID}, f.endpoints()...),
			"error: set exactly one of --client-secret-file, --client-secret-env, --certificate-file, --refresh-token-file (or --from-policy); got 0 (see --help)"},
		"endpoint not https": {append(a.creds(), "--licensing-endpoint", "http://127.0.0.1:1"),
			`error: --licensing-endpoint: "http://127.0.0.1:1" must be an https origin such as https://host[:port]`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			args := tc.args
			if args[0] != "export" {
				args = append([]string{"doctor"}, args...)
			}
			r := runArgs(t, args...)
			if r.code != ExitError || !strings.HasPrefix(r.errOut, tc.want) || strings.Count(r.errOut, "\n") != 1 {
				t.Errorf("want one line starting %q\n%s", tc.want, r)
			}
			assertNoSecrets(t, r, a.secret)
		})
	}
}
