package tracking

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/directory"
)

// FuzzSubscriptionClassification builds a directory (subscriptions and
// subscribed SKUs, with odd owner types, statuses, billing accounts, missing
// SKU entries and repeated IDs) from the fuzzer's bytes, classifies it, and
// decides a handover for every self-service subscription from facts and a
// buyer also drawn from the bytes. It checks that nothing panics, that an
// organisation-owned subscription (not owned by a user, or in a billing
// account holding one that is not) is never self-service, and that a
// verdict is only given on the evidence handoverVerdict promises: never
// while the subscription's seats are in use, a takeover only when the buyer
// holds the SKU and the organisation's seats in use rose.
//
// Seeds: the f.Add calls below and testdata/fuzz/FuzzSubscriptionClassification.
// Run: go test ./internal/tracking/ -run '^$' -fuzz FuzzSubscriptionClassification -fuzztime 30s
func FuzzSubscriptionClassification(f *testing.F) {
	f.Add([]byte{})
	// Two organisation subscriptions owned by "User", one purchase (the sample directory).
	f.Add([]byte{3, 0, 0, 0, 0, 25, 1, 0, 0, 1, 0, 10, 1, 0, 1, 1, 0, 1, 1, 0, 2, 9, 1, 1, 4, 1, 0})
	// A company-owned subscription, a partner's, a purchase missing from subscribed SKUs.
	f.Add([]byte{3, 2, 0, 0, 0, 25, 1, 3, 1, 1, 0, 5, 1, 0, 2, 1, 3, 1, 0, 7, 0, 0, 0, 3})
	// Repeated IDs, every status.
	f.Add([]byte{6, 0, 0, 0, 0, 1, 3, 0, 1, 0, 1, 1, 3, 0, 1, 0, 2, 1, 1, 1, 2, 0, 3, 1, 1, 4, 2, 1, 4, 1, 1, 5, 3, 2, 5, 2, 0xff, 0x80, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &byteReader{data: data}
		subs, skus := fuzzDirectory(r)
		selfService, org := ClassifySelfService(subs, skus)
		orgOwned := organisationOwned(subs, skus)
		for _, sub := range selfService {
			if orgOwned[sub.ID] {
				t.Fatalf("organisation-owned subscription %q (ownerType %q) classified self-service (organisation accounts %v)", sub.ID, sub.OwnerType, org)
			}
		}
		dir := NewView(subs, skus)
		for _, sub := range dir.SelfService {
			prev := Entry{ID: sub.ID, SkuID: sub.SkuID, Trial: r.bool(),
				AssignedUsers: int32(r.intn(4)), OrgSeatsInUse: int32(r.intn(6))}
			f := dir.Facts(prev, sub.Status, r.bool())
			if r.bool() {
				f.Buyer = &directory.User{ID: sub.OwnerID}
				if r.bool() {
					f.Buyer.AssignedSkuIDs = []string{strings.ToUpper(sub.SkuID)}
				}
			}
			_ = NeedsBuyer(prev, f)
			checkVerdict(t, prev, f)
		}
	})
}

// checkVerdict checks one decision against the evidence rules.
func checkVerdict(t *testing.T, prev Entry, f Facts) {
	t.Helper()
	verdict, evidence, decided := HandoverVerdict(prev, f)
	holds := f.Buyer != nil && holdsSku(f.Buyer, prev.SkuID)
	switch {
	case !decided && (verdict != "" || evidence != ""):
		t.Fatalf("undecided with a verdict %q / evidence %q", verdict, evidence)
	case !decided:
	case !f.Released():
		t.Fatalf("verdict %s while the subscription's seats are in use: facts %+v", verdict, f)
	case verdict == TakenOver && !(holds && f.OrgSeatsInUse > int(prev.OrgSeatsInUse)):
		t.Fatalf("TakenOver without the buyer holding the SKU and the organisation's seats rising: prev %+v facts %+v", prev, f)
	case verdict != TakenOver && !f.Ended():
		t.Fatalf("%s of a subscription that did not end: facts %+v", verdict, f)
	case evidence == "":
		t.Fatalf("verdict %s without evidence", verdict)
	}
}

// organisationOwned returns the IDs of subscriptions that are not owned by
// a user, or whose billing account holds one that is not.
func organisationOwned(subs []directory.Subscription, skus []directory.SubscribedSku) map[string]bool {
	accountOf := map[string]string{}
	for _, k := range skus {
		for _, id := range k.SubscriptionIDs {
			accountOf[id] = k.AccountID
		}
	}
	orgAccounts := map[string]bool{}
	for _, s := range subs {
		if a, ok := accountOf[s.ID]; ok && !strings.EqualFold(s.OwnerType, OwnerTypeUser) {
			orgAccounts[a] = true
		}
	}
	out := map[string]bool{}
	for _, s := range subs {
		if a, ok := accountOf[s.ID]; !strings.EqualFold(s.OwnerType, OwnerTypeUser) || ok && orgAccounts[a] {
			out[s.ID] = true
		}
	}
	return out
}

var (
	fuzzOwnerTypes = []string{"User", "user", "Company", "Partner", ""}
	fuzzStatuses   = []string{"Enabled", "Warning", "Suspended", "Deleted", "LockedOut", ""}
	fuzzSkus       = []string{skuCopilot, skuSPB, strings.ToUpper(skuCopilot)}
)

// fuzzDirectory reads up to 16 subscriptions of 6 bytes each (owner type,
// billing account, SKU, status, seats, flags: listed in subscribed SKUs,
// repeats the previous ID) and groups the listed ones into subscribed SKUs
// per (account, SKU), with consumed units read from the bytes that follow.
func fuzzDirectory(r *byteReader) ([]directory.Subscription, []directory.SubscribedSku) {
	n := r.intn(17)
	var subs []directory.Subscription
	type key struct{ account, sku string }
	groups := map[key]*directory.SubscribedSku{}
	var order []key
	for i := range n {
		s := directory.Subscription{ID: fmt.Sprintf("sub-%d", i), OwnerType: fuzzOwnerTypes[r.intn(len(fuzzOwnerTypes))], OwnerID: fmt.Sprintf("user-%d", i)}
		account := fmt.Sprintf("account-%d", r.intn(4))
		s.SkuID = fuzzSkus[r.intn(len(fuzzSkus))]
		s.Status = fuzzStatuses[r.intn(len(fuzzStatuses))]
		s.TotalLicenses = r.intn(30)
		flags := r.byte()
		if flags&2 != 0 && i > 0 {
			s.ID = subs[i-1].ID
		}
		subs = append(subs, s)
		if flags&1 == 0 {
			continue
		}
		k := key{account, SkuKey(s.SkuID)}
		g := groups[k]
		if g == nil {
			g = &directory.SubscribedSku{AccountID: account, SkuID: s.SkuID}
			groups[k] = g
			order = append(order, k)
		}
		g.Enabled += s.TotalLicenses
		g.SubscriptionIDs = append(g.SubscriptionIDs, s.ID)
	}
	skus := make([]directory.SubscribedSku, 0, len(order))
	for _, k := range order {
		g := groups[k]
		g.Consumed = r.intn(g.Enabled + 2)
		skus = append(skus, *g)
	}
	return subs, skus
}

// byteReader hands out the fuzzer's bytes; past the end it reads zeros.
type byteReader struct {
	data []byte
	pos  int
}

func (r *byteReader) byte() byte {
	if r.pos >= len(r.data) {
		return 0
	}
	b := r.data[r.pos]
	r.pos++
	return b
}

func (r *byteReader) intn(n int) int { return int(r.byte()) % n }
func (r *byteReader) bool() bool     { return r.byte()&1 == 1 }

// SKU IDs of Microsoft 365 Copilot and Business Premium.
const (
	skuCopilot = "639dec6b-bb19-468b-871c-c5c441c4b0cb"
	skuSPB     = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
)
