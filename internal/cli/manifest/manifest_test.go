package manifest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

const valid = `apiVersion: commerce.tenantpolicy.io/v1alpha1
kind: TenantPurchasePolicy
metadata:
  name: contoso
  namespace: default
spec:
  tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47
  auth:
    clientID: 11111111-2222-3333-4444-555555555555
    clientSecretRef: {name: contoso-app, key: clientSecret}
  mode: Observe
  default: Disabled
  products:
    - productID: CFQ7TTC0MM8R
      policy: OnlyTrialsWithoutPaymentMethod
    - productID: CFQ7TTC0H9MP
      policy: Enabled
`

const validSet = `apiVersion: commerce.tenantpolicy.io/v1alpha1
kind: TenantPurchasePolicySet
metadata:
  name: baseline
  namespace: default
spec:
  template:
    auth:
      clientID: 11111111-2222-3333-4444-555555555555
      clientSecretRef: {name: partner-app, key: clientSecret}
    default: Disabled
  tenants:
    - tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47
      name: contoso
      overrides:
        mode: Observe
`

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Documents keep their file and first line; a directory is read in name
// order; empty documents and non-manifest files are skipped; stdin is "-".
func TestRead(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "b.yaml", "# leading comment\n---\n"+valid+"---\n# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: m365}\n")
	writeFile(t, dir, "a.json", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}`)
	writeFile(t, dir, "notes.txt", "not a manifest")
	docs, err := Read([]string{dir, Stdin}, strings.NewReader(valid))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, filepath.Base(d.Source)+":"+d.Object.GetKind()+":"+d.Object.GetName()+"@"+d.Where()[strings.LastIndex(d.Where(), ":")+1:])
	}
	want := []string{"a.json:Namespace:a@1", "b.yaml:TenantPurchasePolicy:contoso@3", "b.yaml:Namespace:m365@23", "<stdin>:TenantPurchasePolicy:contoso@1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("documents (-want +got):\n%s", diff)
	}
	if line := docs[1].LineOf("spec.products[1].policy"); line != 19 {
		t.Errorf("spec.products[1].policy is on line 19 of b.yaml, got %d", line)
	}
	if line := docs[1].LineOf("spec.offerTypes[0]"); line != 8 {
		t.Errorf("a path the document lacks lands on its deepest existing part (the line of spec:, 8), got %d", line)
	}
	if line := docs[1].LineOf("spec.auth"); line != 10 {
		t.Errorf("a mapping is where its key is written (auth:, line 10), not its first field, got %d", line)
	}
}

// A YAML syntax error names the file and the line of the file (not of the
// document) and says it is YAML.
func TestReadSyntaxError(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "bad.yaml", valid+"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n   labels: oops\n")
	_, err := Read([]string{p}, nil)
	ps, ok := AsProblems(err)
	if !ok || len(ps) != 1 || ps[0].Line != 23 || !strings.HasPrefix(ps[0].Message, "invalid YAML: ") {
		t.Fatalf("want one problem at bad.yaml:23, got %v", err)
	}
	if !strings.HasPrefix(err.Error(), p+":23: invalid YAML: ") {
		t.Errorf("message %q", err)
	}
}

// Offline validation says exactly what the API server says, for every kind
// of rule the CRD has, and stores the same defaults.
func TestValidateMatchesAPIServer(t *testing.T) {
	env, err := testsupport.StartEnv()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		reason, from, to string
		set              bool
	}{
		"set: template with tenantID (CEL)": {reason: "a set's template rule", from: "    default: Disabled", to: "    default: Disabled\n    tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47", set: true},
		"set: no tenants nor discovery":     {reason: "a set's spec rule", from: "  tenants:\n    - tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47\n      name: contoso\n      overrides:\n        mode: Observe\n", to: "", set: true},
		"set: override enum":                {reason: "an override's enum", from: "mode: Observe", to: "mode: Watch", set: true},
		"tenant GUID (CEL)":                 {reason: "a field CEL rule", from: "tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47", to: "tenantID: contoso.onmicrosoft.com"},
		"two auth methods (CEL)":            {reason: "an object CEL rule", from: "clientSecretRef: {name: contoso-app, key: clientSecret}", to: "clientSecretRef: {name: contoso-app, key: clientSecret}\n    workloadIdentity: {serviceAccountName: m365}"},
		"enum":                              {reason: "an OpenAPI enum (blocks the CEL rules)", from: "default: Disabled", to: "default: Off"},
		"duplicate product (list map)":      {reason: "listType=map keys", from: "CFQ7TTC0H9MP", to: "CFQ7TTC0MM8R"},
		"interval below 1m (CEL)":           {reason: "a duration rule", from: "mode: Observe", to: "mode: Observe\n  interval: 30s"},
		"secret name pattern":               {reason: "a pattern", from: "name: contoso-app", to: "name: Contoso_App"},
		"product ID and missing policy":     {reason: "several causes at once", from: "      policy: Enabled\n", to: "      until: \"2026-01-01T00:00:00Z\"\n"},
		"bad object name":                   {reason: "metadata validation", from: "name: contoso", to: "name: Contoso"},
	}
	ctx := context.Background()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			base := valid
			if tc.set {
				base = validSet
			}
			text := strings.Replace(base, tc.from, tc.to, 1)
			if text == base {
				t.Fatalf("the edit %q did not apply", tc.from)
			}
			docs, err := Parse("policy.yaml", []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			_, offline := v.Validate(ctx, docs[0], "default")
			online := env.Client.Create(ctx, docs[0].Object.DeepCopy(), client.DryRunAll)
			var inv *Invalid
			if !errors.As(offline, &inv) || inv.Err == nil || online == nil {
				t.Fatalf("%s: both must refuse it: offline %v, API server %v", tc.reason, offline, online)
			}
			if inv.Err.Error() != online.Error() {
				t.Errorf("%s: messages differ\noffline:    %s\nAPI server: %s", tc.reason, inv.Err, online)
			}
			if !apierrors.IsInvalid(online) {
				t.Errorf("the API server answered %v", online)
			}
		})
	}

	t.Run("unknown field", func(t *testing.T) {
		docs, _ := Parse("policy.yaml", []byte(strings.Replace(valid, "mode: Observe", "mode: Observe\n  deafult: Enabled", 1)))
		_, offline := v.Validate(ctx, docs[0], "default")
		online := env.Client.Create(ctx, docs[0].Object.DeepCopy(), client.DryRunAll, client.FieldValidation("Strict"))
		const want = `strict decoding error: unknown field "spec.deafult"`
		if offline == nil || !strings.Contains(offline.Error(), "policy.yaml:12: TenantPurchasePolicy default/contoso: "+want) || online == nil || !strings.Contains(online.Error(), want) {
			t.Errorf("want %q at line 12 offline and from the API server, got\noffline:    %v\nAPI server: %v", want, offline, online)
		}
	})

	t.Run("valid, with the API server's defaults", func(t *testing.T) {
		docs, _ := Parse("policy.yaml", []byte(valid))
		got, err := v.Validate(ctx, docs[0], "default")
		if err != nil {
			t.Fatal(err)
		}
		stored := docs[0].Object.DeepCopy()
		if err := env.Client.Create(ctx, stored, client.DryRunAll); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(stored.Object["spec"], got.Object["spec"]); diff != "" {
			t.Errorf("defaulted spec differs from the stored one (-api +offline):\n%s", diff)
		}
	})

	t.Run("causes at their lines", func(t *testing.T) {
		docs, _ := Parse("policy.yaml", []byte(strings.Replace(valid, "tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47", "tenantID: nope", 1)))
		_, err := v.Validate(ctx, docs[0], "default")
		want := `policy.yaml:7: TenantPurchasePolicy default/contoso: spec.tenantID: Invalid value: "nope": tenantID must be a lower-case GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47; Entra compares tenant IDs case-insensitively, write it in lower case`
		if err == nil || err.Error() != want {
			t.Errorf("got  %v\nwant %s", err, want)
		}
	})
}
