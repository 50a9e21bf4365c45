package m365

import "strings"

// Bounds of the values the clients return, so that whatever Microsoft (or a
// proxy) answers, a value copied into status fits the CRD and the status
// patch is never refused. They equal the CRD's bounds in api/v1alpha1 (see
// TestClientBoundsMatchCRD there); this package does not import the API.
const (
	// MaxIDLength bounds every ID: a product ID or offer type
	// (status.products[].productID), a subscription, SKU or user ID
	// (status.subscriptions.selfService[].id, skuID, buyerID).
	MaxIDLength = 64
	// MaxNameLength bounds a product name (status.products[].name).
	MaxNameLength = 256
	// MaxValueLength bounds a policy value (status.products[].observed).
	MaxValueLength = 64
	// MaxSkuPartNumberLength bounds a SKU part number
	// (status.subscriptions.selfService[].skuPartNumber).
	MaxSkuPartNumberLength = 128
	// MaxStatusLength bounds a subscription status
	// (status.subscriptions.selfService[].status).
	MaxStatusLength = 32
)

// ListInfo says what a list answer held beyond the items a client returned,
// so the caller can report it (and distrust a list that lost items).
type ListInfo struct {
	// Duplicates is the number of items dropped because an earlier item of
	// the same answer (any page) had the same key; the first one is kept.
	Duplicates int
	// Invalid is the number of items dropped because they were null, not an
	// object of the expected shape, had no key, or a key longer than
	// MaxIDLength.
	Invalid int
	// Truncated is the number of returned items with a text field cut to its
	// bound (marked "…") or an over-long secondary ID cleared.
	Truncated int
}

// Dropped is the number of items of the answer that were not returned.
func (i ListInfo) Dropped() int { return i.Duplicates + i.Invalid }

// Add counts another answer's items in i (two lists read as one).
func (i *ListInfo) Add(o ListInfo) {
	i.Duplicates += o.Duplicates
	i.Invalid += o.Invalid
	i.Truncated += o.Truncated
}

// Bounder bounds the string fields of one item in place and remembers
// whether it changed any.
type Bounder struct{ Changed bool }

// Text makes *s one line of printable text of at most max runes.
func (b *Bounder) Text(s *string, max int) {
	if v := CleanText(*s, max); v != *s {
		*s, b.Changed = v, true
	}
}

// ID clears *s when it is longer than MaxIDLength: a cut ID would name
// another object.
func (b *Bounder) ID(s *string) {
	if len(*s) > MaxIDLength {
		*s, b.Changed = "", true
	}
}

// Keys tells the items of one listing (across its pages) apart by ID. Use
// one Keys per listing.
type Keys map[string]bool

// Keep tells whether the item identified by id (and qualifiers, e.g. the
// billing account of a SKU) is to be returned: its id is valid (not empty,
// at most MaxIDLength) and no earlier item had the same id and qualifiers.
// An item that is not kept is counted in info as Invalid or Duplicates.
func (k Keys) Keep(info *ListInfo, id string, qualifiers ...string) bool {
	if id == "" || len(id) > MaxIDLength {
		info.Invalid++
		return false
	}
	key := strings.Join(append([]string{id}, qualifiers...), "\x00")
	if k[key] {
		info.Duplicates++
		return false
	}
	k[key] = true
	return true
}
