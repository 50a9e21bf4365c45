package m365sim

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// page is one decoded Graph or licensing answer.
type page struct {
	status int
	items  []any
	next   string
	size   int
	raw    map[string]any
}

func (f *fixture) page(t *testing.T, u, tok string) page {
	t.Helper()
	r := f.do(t, "GET", u, tok, nil, nil)
	m := r.json(t)
	items, _ := m["value"].([]any)
	if items == nil {
		items, _ = m["items"].([]any)
	}
	next, _ := m["@odata.nextLink"].(string)
	return page{status: r.status, items: items, next: next, size: len(r.body), raw: m}
}

func ids(items []any) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, itemID(it))
	}
	return out
}

func TestGraphAnswerFaults(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.PageSize = 2 })
	for _, upn := range []string{"eve@x", "frank@x"} {
		if _, err := f.sim.Purchase(f.tenant, PurchaseRequest{UserPrincipalName: upn, SkuPartNumber: SkuCopilot}); err != nil {
			t.Fatal(err)
		}
	}
	tok := f.graphToken(t)
	subsURL := f.graph("/v1.0/directory/subscriptions")
	truth := f.page(t, subsURL, tok) // ids 0,1 and a nextLink to 2,3
	second := f.page(t, truth.next, tok)
	all := append(ids(truth.items), ids(second.items)...)
	if len(all) != 4 || truth.next == "" || second.next != "" {
		t.Fatalf("setup: 4 subscriptions in 2 pages: %v", all)
	}

	cases := []struct {
		name  string
		fault Fault
		check func(t *testing.T, p page)
	}{
		{"empty page", Fault{Answer: AnswerEmptyPage}, func(t *testing.T, p page) {
			if p.status != 200 || len(p.items) != 0 || p.next != "" {
				t.Errorf("want 200 {\"value\":[]} without nextLink: %d %v %q", p.status, p.items, p.next)
			}
		}},
		{"short page by count", Fault{Answer: AnswerShortPage}, func(t *testing.T, p page) {
			if diff := cmp.Diff(all[:1], ids(p.items)); diff != "" || p.next != truth.next {
				t.Errorf("last item dropped, nextLink kept (-want +got):\n%s", diff)
			}
		}},
		{"short page by id", Fault{Answer: AnswerShortPage, ItemID: all[0]}, func(t *testing.T, p page) {
			if diff := cmp.Diff(all[1:2], ids(p.items)); diff != "" {
				t.Errorf("named item dropped (-want +got):\n%s", diff)
			}
		}},
		{"null items", Fault{Answer: AnswerNullItems, N: 2}, func(t *testing.T, p page) {
			if len(p.items) != 4 || p.items[0] != nil || p.items[3] != nil || itemID(p.items[1]) != all[0] {
				t.Errorf("nulls at the start and the end: %v", p.items)
			}
		}},
		{"duplicates across pages", Fault{Answer: AnswerDuplicateItems}, func(t *testing.T, p page) {
			next := f.page(t, p.next, tok)
			if diff := cmp.Diff([]string{all[0], all[1], all[1], all[2]}, append(ids(p.items), ids(next.items)...)); diff != "" {
				t.Errorf("the next page starts one item early (-want +got):\n%s", diff)
			}
		}},
		{"nextLink loop", Fault{Answer: AnswerNextLinkLoop}, func(t *testing.T, p page) {
			if p.next != subsURL {
				t.Errorf("nextLink %q, want the request itself %q", p.next, subsURL)
			}
		}},
		{"cross-origin nextLink", Fault{Answer: AnswerCrossOriginNextLink}, func(t *testing.T, p page) {
			if want := f.sim.LeakSinkURL() + strings.TrimPrefix(truth.next, f.sim.Endpoints().Graph); p.next != want {
				t.Errorf("nextLink %q, want %q", p.next, want)
			}
		}},
		{"oversized body", Fault{Answer: AnswerOversize}, func(t *testing.T, p page) {
			if p.size < DefaultOversizeBody || len(p.items) != 2 {
				t.Errorf("a valid JSON page of %d bytes, want ≥ %d", p.size, DefaultOversizeBody)
			}
		}},
		{"missing fields", Fault{Answer: AnswerMissingFields, Fields: []string{"status", "skuId"}}, func(t *testing.T, p page) {
			for _, it := range p.items {
				m := it.(map[string]any)
				if _, ok := m["status"]; ok || m["skuId"] != nil || m["id"] == nil {
					t.Errorf("status and skuId removed, id kept: %v", m)
				}
			}
		}},
		{"many items", Fault{Answer: AnswerManyItems, N: 3}, func(t *testing.T, p page) {
			if len(p.items) != 5 || len(map[string]bool{itemID(p.items[2]): true, itemID(p.items[3]): true, itemID(p.items[4]): true}) != 3 {
				t.Errorf("3 synthetic items with distinct ids: %v", ids(p.items))
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.fault.Endpoint, tc.fault.PathPrefix, tc.fault.Count = EndpointGraph, "/v1.0/directory/subscriptions", 1
			if err := f.sim.InjectFault(f.tenant, tc.fault); err != nil {
				t.Fatal(err)
			}
			tc.check(t, f.page(t, subsURL, tok))
			if again := f.page(t, subsURL, tok); !cmp.Equal(ids(again.items), ids(truth.items)) || again.next != truth.next {
				t.Errorf("count 1: the next answer is the truth again: %v %q", ids(again.items), again.next)
			}
		})
	}
}

func TestLicensingAnswerFaults(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.licensingToken(t)
	list := f.licensing(productsPath)
	truth := ids(f.page(t, list, tok).items)

	inject := func(body map[string]any) {
		t.Helper()
		body["endpoint"], body["count"] = "licensing", 1
		if r := f.do(t, "POST", f.admin("/faults"), "", body, nil); r.status != http.StatusCreated {
			t.Fatalf("inject %v: %d %s", body, r.status, r.body)
		}
	}
	inject(map[string]any{"answer": "duplicateItems", "n": 2})
	if got := ids(f.page(t, list, tok).items); len(got) != len(truth)+2 || got[len(truth)] != truth[0] || got[len(truth)+1] != truth[1] {
		t.Errorf("duplicate product IDs: %v", got)
	}
	inject(map[string]any{"answer": "manyItems"})
	if got := ids(f.page(t, list, tok).items); len(got) != len(truth)+DefaultManyItems || got[len(got)-1] != "SIMX00000300" {
		t.Errorf("more than 256 products: %d, last %s", len(got), got[len(got)-1])
	}
	inject(map[string]any{"answer": "longName", "itemId": "CFQ7TTC0H9MP"})
	for _, it := range f.page(t, list, tok).items {
		m := it.(map[string]any)
		if name := m["productName"].(string); m["productId"] == "CFQ7TTC0H9MP" && (len(name) != DefaultLongName || !strings.HasPrefix(name, "Power BI Pro")) {
			t.Errorf("a 300-character product name: %d %q", len(name), name)
		}
	}
	inject(map[string]any{"answer": "shortPage", "itemId": "CFQ7TTC0MM8R"})
	missing := ids(f.page(t, list, tok).items)
	if len(missing) != len(truth)-1 || strings.Contains(strings.Join(missing, ","), "CFQ7TTC0MM8R") {
		t.Errorf("Copilot missing from one list answer: %v", missing)
	}
	if diff := cmp.Diff(truth, ids(f.page(t, list, tok).items)); diff != "" {
		t.Errorf("and back in the next (-want +got):\n%s", diff)
	}
}

func TestAnswerFaultValidation(t *testing.T) {
	f := newFixture(t, nil)
	bad := map[string]Fault{
		"unknown answer":                {Endpoint: EndpointGraph, Answer: "sideways"},
		"rewrite with a status":         {Endpoint: EndpointGraph, Answer: AnswerEmptyPage, Status: 500},
		"missing fields without fields": {Endpoint: EndpointGraph, Answer: AnswerMissingFields},
		"stale reads without staleFor":  {Endpoint: EndpointLicensing, Answer: AnswerStaleReads},
		"not applied on Graph":          {Endpoint: EndpointGraph, Answer: AnswerNotApplied},
		"proxy page without a status":   {Endpoint: EndpointGraph, Answer: AnswerProxyHTML},
	}
	for name, fault := range bad {
		if err := f.sim.InjectFault(f.tenant, fault); err == nil {
			t.Errorf("%s: want ErrInvalid", name)
		}
	}
}
