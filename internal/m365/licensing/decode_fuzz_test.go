package licensing

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// FuzzDecodeList: whatever a list answer holds, decoding never panics, every
// item it returns has a unique key of at most m365.MaxIDLength bytes and
// fields within the CRD's bounds, and the items it returns plus those it
// reports dropped are exactly the items of the answer.
func FuzzDecodeList(f *testing.F) {
	for _, s := range []string{
		`{"items":[{"policyId":"AllowSelfServicePurchase","policyValue":"Enabled","productName":"Microsoft 365 Copilot","productId":"CFQ7TTC0MM8R"}]}`,
		`{"Items":[{"ProductId":"A"},{"productID":"A"},null,{"productId":""},{"productId":7},"x",[]]}`,
		`{"items":[{"productId":"SaaS"},{"productId":"x","offerType":"SaaS"},{"offerType":"DYNAMICSBC"}]}`,
		`{"items":[{"productId":"` + strings.Repeat("I", 65) + `","productName":"` + strings.Repeat("n", 300) + `"}]}`,
		`{"items":[{"productId":"B","productName":"a\u0000b\u202ec","policyValue":"` + strings.Repeat("v", 80) + `"}]}`,
		`{"items":null}`, `{}`, `[]`, `null`, `<html>`, `{"items":{}}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, offerTypes bool) {
		items, info, err := decodeList(body, offerTypes)
		if err != nil {
			return
		}
		var raw struct{ Items []json.RawMessage }
		if json.Unmarshal(body, &raw) != nil {
			t.Fatalf("decodeList accepted what is not a list: %q", body)
		}
		if len(items)+info.Dropped() != len(raw.Items) {
			t.Fatalf("%d items returned + %d dropped != %d in the answer", len(items), info.Dropped(), len(raw.Items))
		}
		seen := map[string]bool{}
		for _, it := range items {
			key := it.ProductID
			if offerTypes {
				key = it.OfferType
			}
			if key == "" || len(key) > m365.MaxIDLength || seen[key] {
				t.Fatalf("key %q is empty, too long or repeated", key)
			}
			seen[key] = true
			if len(it.ProductID) > m365.MaxIDLength || utf8.RuneCountInString(it.ProductName) > m365.MaxNameLength ||
				utf8.RuneCountInString(it.PolicyValue) > m365.MaxValueLength || utf8.RuneCountInString(it.PolicyID) > m365.MaxIDLength {
				t.Fatalf("an item exceeds the CRD's bounds: %+v", it)
			}
		}
	})
}
