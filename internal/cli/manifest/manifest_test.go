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
	if line := docs[1].LineOf("spec.offerTypes[0]"); line != 9 {
		t.Errorf("a path the document lacks lands on its deepest existing part (spec's content, line 9), got %d", line)
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
	}{
		"tenant GUID (CEL)":             {"a field CEL rule", "tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47", "tenantID: contoso.onmicrosoft.com"},
		"two auth methods (CEL)":        {"an object CEL rule", "clientSecretRef: {name: contoso-app, key: clientSecret}", "clientSecretRef: {name: contoso-app, key: clientSecret}\n    workloadIdentity: {serviceAccountName: m365}"},
		"enum":                          {"an OpenAPI enum (blocks the CEL rules)", "default: Disabled", "default: Off"},
		"duplicate product (list map)":  {"listType=map keys", "CFQ7TTC0H9MP", "CFQ7TTC0MM8R"},
		"interval below 1m (CEL)":       {"a duration rule", "mode: Observe", "mode: Observe\n  interval: 30s"},
		"secret name pattern":           {"a pattern", "name: contoso-app", "name: Contoso_App"},
		"product ID and missing policy": {"several causes at once", "      policy: Enabled\n", "      until: \"2026-01-01T00:00:00Z\"\n"},
		"bad object name":               {"metadata validation", "name: contoso", "name: Contoso"},
	}
	ctx := context.Background()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			text := strings.Replace(valid, tc.from, tc.to, 1)
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
		want := `policy.yaml:7: TenantPurchasePolicy default/contoso: spec.tenantID: Invalid value: "nope": tenantID must be a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47`
		if err == nil || err.Error() != want {
			t.Errorf("got  %v\nwant %s", err, want)
		}
	})
}
