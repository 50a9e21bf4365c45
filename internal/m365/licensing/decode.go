package licensing

// Decoding a list answer defensively: Microsoft (or a proxy) may send null
// items, items of the wrong shape, the same product twice, or strings longer
// than the CRD accepts. None of that reaches the caller; ListInfo counts it.

import (
	"encoding/json"
	"errors"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// errNoItems is a 2xx list answer without an "items" array.
var errNoItems = errors.New(`no "items" array`)

// decodeList reads {"items":[...]} and returns its items in order. Items are
// keyed by ProductID, or for offer types by OfferTypeKey (then stored in
// OfferType): the first item of a key is kept, later ones are counted as
// Duplicates; an item that is null, not an object of Item's shape, or whose
// key is empty or longer than m365.MaxIDLength is counted as Invalid. Text
// fields are bounded to the CRD's lengths (Truncated counts the items
// changed). Only an answer that is not such an object is an error.
func decodeList(body []byte, offerTypes bool) ([]Item, m365.ListInfo, error) {
	var answer struct {
		Items *[]json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, m365.ListInfo{}, err
	}
	if answer.Items == nil {
		return nil, m365.ListInfo{}, errNoItems
	}
	var info m365.ListInfo
	seen := m365.Keys{}
	items := make([]Item, 0, len(*answer.Items))
	for _, raw := range *answer.Items {
		var it Item
		if string(raw) == "null" || json.Unmarshal(raw, &it) != nil {
			info.Invalid++
			continue
		}
		key := it.ProductID
		if offerTypes {
			key = OfferTypeKey(it)
			it.OfferType = key
		}
		if !seen.Keep(&info, key) {
			continue
		}
		if bound(&it) {
			info.Truncated++
		}
		items = append(items, it)
	}
	return items, info, nil
}

// bound cuts the fields of it to the CRD's lengths and tells whether it
// changed any.
func bound(it *Item) bool {
	var b m365.Bounder
	b.Text(&it.ProductName, m365.MaxNameLength)
	b.Text(&it.PolicyValue, m365.MaxValueLength)
	b.Text(&it.PolicyID, m365.MaxIDLength)
	b.ID(&it.ProductID)
	return b.Changed
}
