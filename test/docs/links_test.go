package docs

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// root is the repository root, seen from this package.
const root = "../.."

func TestSlug(t *testing.T) {
	cases := map[string]struct {
		headings []string
		want     []string
	}{
		"lower case, spaces to hyphens":   {[]string{"Install with Helm"}, []string{"install-with-helm"}},
		"punctuation dropped, not merged": {[]string{"Many tenants: TenantPurchasePolicySet"}, []string{"many-tenants-tenantpurchasepolicyset"}},
		"hyphens and underscores kept":    {[]string{"make test-e2e and go_test"}, []string{"make-test-e2e-and-go_test"}},
		"dots, slashes, parens dropped":   {[]string{"The simulator (`m365sim`) v1.0/x"}, []string{"the-simulator-m365sim-v10x"}},
		"letters with accents kept":       {[]string{"Émigré"}, []string{"émigré"}},
		"repeats numbered":                {[]string{"Status", "Status", "Status"}, []string{"status", "status-1", "status-2"}},
		"an ampersand leaves two hyphens": {[]string{"Sizing & limits"}, []string{"sizing--limits"}},
	}
	for name, c := range cases {
		seen := map[string]int{}
		var got []string
		for _, h := range c.headings {
			got = append(got, Slug(h, seen))
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", name, diff)
		}
	}
}

// TestFixtureThatResolves: every kind of link the checker accepts (same
// file, other file, heading with code and emphasis, repeated heading,
// directory, line anchor, root-relative, the repository's GitHub address,
// reference links) resolves; external links and code blocks are skipped.
func TestFixtureThatResolves(t *testing.T) {
	broken := check(t, "test/docs/testdata/ok/README.md")
	for _, b := range broken {
		t.Errorf("reported a link that resolves: %s", b)
	}
}

// TestFixtureThatDoesNotResolve proves the checker fails: a missing file, a
// missing anchor (in another file and in the same one), a link out of the
// repository, an anchor into a file that is not Markdown, and a missing file
// behind the repository's GitHub address are each reported on their line,
// and the link that resolves is not.
func TestFixtureThatDoesNotResolve(t *testing.T) {
	f := "test/docs/testdata/broken/README.md"
	var got []string
	for _, b := range check(t, f) {
		got = append(got, b.Link+" @"+strconv.Itoa(b.Line))
	}
	want := []string{
		"missing.md @3",
		"other.md#no-such-heading @4",
		"#nowhere @5",
		"../../../../../shared/design/m365-api.md @6",
		"sub/code.go.txt#main @7",
		RepoURL + "/blob/main/test/docs/testdata/broken/gone.md @8",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("broken links (-want +got)\n%s", diff)
	}
}

// TestRepositoryDocs is the check itself: every relative link and anchor
// of README.md and docs/*.md resolves inside the repository.
func TestRepositoryDocs(t *testing.T) {
	files := []string{"README.md"}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		files = append(files, filepath.ToSlash(strings.TrimPrefix(d, root+string(filepath.Separator))))
	}
	for _, want := range []string{"docs/architecture.md", "docs/microsoft-api.md", "docs/decisions.md", "docs/operations.md"} {
		if !slices.Contains(files, want) {
			t.Errorf("%s is missing", want)
		}
	}
	for _, b := range check(t, files...) {
		t.Errorf("%s", b)
	}
}

// TestRunbookURLs: every alert (in config/prometheus and the chart's copy)
// carries a runbook_url to its own entry of docs/operations.md (the anchor
// of a heading named after the alert), and that entry exists.
func TestRunbookURLs(t *testing.T) {
	c, err := NewChecker(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"config/prometheus/prometheusrule.yaml", "charts/purchase-policy-controller/files/prometheusrule.yaml"} {
		raw, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		var rule struct {
			Spec struct {
				Groups []struct {
					Rules []struct {
						Alert       string            `json:"alert"`
						Annotations map[string]string `json:"annotations"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(raw, &rule); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		alerts := 0
		for _, g := range rule.Spec.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				alerts++
				got := r.Annotations["runbook_url"]
				want := RepoURL + "/blob/main/docs/operations.md#" + strings.ToLower(r.Alert)
				if got != want {
					t.Errorf("%s: %s: runbook_url %q, want %q", file, r.Alert, got, want)
					continue
				}
				if problem := c.Resolve(file, got); problem != "" {
					t.Errorf("%s: %s: %s", file, r.Alert, problem)
				}
			}
		}
		if alerts == 0 {
			t.Errorf("%s: no alerts read", file)
		}
	}
}

func check(t *testing.T, files ...string) []Broken {
	t.Helper()
	c, err := NewChecker(root)
	if err != nil {
		t.Fatal(err)
	}
	broken, err := c.CheckFiles(files...)
	if err != nil {
		t.Fatal(err)
	}
	return broken
}
