package m365sim

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// prepaid is one subscribedSkus entry's units, as Graph shows them.
type prepaid struct {
	Capability                            string
	Enabled, Warning, Suspended, Consumed float64
}

func (f *fixture) prepaidOf(t *testing.T, subID string) prepaid {
	t.Helper()
	items, _ := f.listAll(t, f.graphToken(t), "/v1.0/subscribedSkus")
	for _, it := range items {
		for _, id := range it["subscriptionIds"].([]any) {
			if id == subID {
				u := it["prepaidUnits"].(map[string]any)
				return prepaid{it["capabilityStatus"].(string), u["enabled"].(float64), u["warning"].(float64), u["suspended"].(float64), it["consumedUnits"].(float64)}
			}
		}
	}
	t.Fatalf("no subscribedSku holds %s", subID)
	return prepaid{}
}

func (f *fixture) graphSubscription(t *testing.T, id string) map[string]any {
	t.Helper()
	return f.do(t, "GET", f.graph("/v1.0/directory/subscriptions/"+id), f.graphToken(t), nil, nil).json(t)
}

func TestCancellationLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	sub, err := f.sim.Purchase(f.tenant, PurchaseRequest{UserPrincipalName: "eve@contoso.onmicrosoft.com", SkuPartNumber: SkuCopilot, Seats: 2})
	if err != nil {
		t.Fatal(err)
	}
	cancelled := f.clock.Now()
	if _, err := f.sim.Cancel(f.tenant, sub.ID); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		after   time.Duration
		status  string
		prepaid prepaid
		next    time.Time
		users   int
	}{
		{0, StatusWarning, prepaid{StatusWarning, 0, 2, 0, 1}, cancelled.Add(DefaultWarningPeriod), 1},
		{DefaultWarningPeriod - time.Second, StatusWarning, prepaid{StatusWarning, 0, 2, 0, 1}, cancelled.Add(DefaultWarningPeriod), 1},
		{time.Second, StatusSuspended, prepaid{StatusSuspended, 0, 0, 2, 1}, cancelled.Add(DefaultWarningPeriod + DefaultSuspendedPeriod), 1},
		{DefaultSuspendedPeriod, StatusDeleted, prepaid{StatusDeleted, 0, 0, 0, 0}, cancelled.Add(DefaultWarningPeriod + DefaultSuspendedPeriod), 0},
	}
	for _, st := range steps {
		f.clock.Advance(st.after)
		g := f.graphSubscription(t, sub.ID)
		if g["status"] != st.status || g["nextLifecycleDateTime"] != graphTime(st.next) {
			t.Errorf("%s after cancelling: status %v next %v, want %s %s", f.clock.Now().Sub(cancelled), g["status"], g["nextLifecycleDateTime"], st.status, graphTime(st.next))
		}
		if diff := cmp.Diff(st.prepaid, f.prepaidOf(t, sub.ID)); diff != "" {
			t.Errorf("%s: subscribedSkus (-want +got):\n%s", st.status, diff)
		}
		if got := len(f.userSkus(t, sub.OwnerID)); got != st.users {
			t.Errorf("%s: the buyer holds %d licences, want %d", st.status, got, st.users)
		}
	}
	if _, err := f.sim.Cancel(f.tenant, sub.ID); !errors.Is(err, ErrSubscriptionDeleted) {
		t.Errorf("cancelling a deleted subscription: %v", err)
	}
}

func TestFailedPaymentKeepsUsers(t *testing.T) {
	f := newFixture(t, nil)
	sub, err := f.sim.Purchase(f.tenant, PurchaseRequest{SkuPartNumber: SkuCopilot})
	if err != nil {
		t.Fatal(err)
	}
	r := f.do(t, "POST", f.admin("/subscriptions/"+sub.ID+"/fail-payment"), "", map[string]string{"status": "Suspended"}, nil)
	if r.status != http.StatusOK || r.json(t)["status"] != StatusSuspended {
		t.Fatalf("fail-payment: %d %s", r.status, r.body)
	}
	if got := f.prepaidOf(t, sub.ID); got != (prepaid{StatusSuspended, 0, 0, 1, 1}) || len(f.userSkus(t, sub.OwnerID)) != 1 {
		t.Errorf("a failed card: Suspended, the buyer still licensed: %+v", got)
	}
	if _, err := f.sim.Renew(f.tenant, sub.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(DefaultSuspendedPeriod + time.Hour)
	if g := f.graphSubscription(t, sub.ID); g["status"] != StatusEnabled {
		t.Errorf("paying (Renew) stops the lifecycle: %v", g["status"])
	}
	if bad, err := f.sim.FailPayment(f.tenant, sub.ID, StatusDeleted); !errors.Is(err, ErrInvalid) {
		t.Errorf("a failed payment cannot delete: %+v %v", bad, err)
	}
	if _, err := f.sim.FailPayment(f.tenant, sub.ID, ""); err != nil {
		t.Fatal(err)
	}
	if got := f.prepaidOf(t, sub.ID); got != (prepaid{StatusWarning, 0, 1, 0, 1}) {
		t.Errorf("fail-payment defaults to Warning: %+v", got)
	}
}

func TestAdvanceSubscription(t *testing.T) {
	f := newFixture(t, nil)
	sub, err := f.sim.Purchase(f.tenant, PurchaseRequest{SkuPartNumber: SkuCopilot})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 3 {
		r := f.do(t, "POST", f.admin("/subscriptions/"+sub.ID+"/advance"), "", nil, nil)
		got = append(got, r.json(t)["status"].(string))
	}
	if diff := cmp.Diff([]string{StatusWarning, StatusSuspended, StatusDeleted}, got); diff != "" {
		t.Errorf("one step per advance (-want +got):\n%s", diff)
	}
	if r := f.do(t, "POST", f.admin("/subscriptions/"+sub.ID+"/advance"), "", nil, nil); r.status != http.StatusConflict {
		t.Errorf("advancing a deleted subscription: %d", r.status)
	}
	other, _ := f.sim.Purchase(f.tenant, PurchaseRequest{SkuPartNumber: SkuCopilot})
	if r := f.do(t, "POST", f.admin("/subscriptions/"+other.ID+"/advance"), "", map[string]string{"to": "Suspended"}, nil); r.json(t)["status"] != StatusSuspended {
		t.Errorf("advance to Suspended: %s", r.body)
	}
	if _, err := f.sim.AdvanceSubscription(f.tenant, other.ID, StatusWarning); !errors.Is(err, ErrInvalid) {
		t.Errorf("advancing backwards: %v", err)
	}
}

func TestTakeoverMovesUsersThenCancels(t *testing.T) {
	f := newFixture(t, nil)
	sub, err := f.sim.Purchase(f.tenant, PurchaseRequest{UserPrincipalName: "gina@contoso.onmicrosoft.com", SkuPartNumber: SkuCopilot})
	if err != nil {
		t.Fatal(err)
	}
	taken, err := f.sim.TakeOver(f.tenant, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if taken.Status != StatusWarning || !taken.Ending || len(taken.AssignedUsers) != 0 {
		t.Errorf("the self-service subscription is cancelled without users: %+v", taken)
	}
	if got := f.prepaidOf(t, sub.ID); got != (prepaid{StatusWarning, 0, 1, 0, 0}) {
		t.Errorf("its seat shows as warning, none consumed: %+v", got)
	}
	if diff := cmp.Diff([]string{SkuCopilot}, f.userSkus(t, sub.OwnerID)); diff != "" {
		t.Errorf("the buyer keeps Copilot from the organisation (-want +got):\n%s", diff)
	}
	f.clock.Advance(DefaultWarningPeriod + DefaultSuspendedPeriod)
	if g := f.graphSubscription(t, sub.ID); g["status"] != StatusDeleted || len(f.userSkus(t, sub.OwnerID)) != 1 {
		t.Errorf("at the end the subscription is Deleted and the buyer still licensed: %v", g["status"])
	}
}

func TestStatusByHandHasNoLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	sub, err := f.sim.Purchase(f.tenant, PurchaseRequest{SkuPartNumber: SkuCopilot})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, "PUT", f.admin("/subscriptions/"+sub.ID+"/status"), "", map[string]string{"status": "Warning"}, nil); r.status != http.StatusOK {
		t.Fatalf("PUT status: %d %s", r.status, r.body)
	}
	f.clock.Advance(DefaultWarningPeriod + DefaultSuspendedPeriod + time.Hour)
	if got := f.prepaidOf(t, sub.ID); got != (prepaid{StatusWarning, 0, 1, 0, 1}) {
		t.Errorf("a status set by hand stays, users licensed: %+v", got)
	}
	if r := f.do(t, "PUT", f.admin("/subscriptions/"+sub.ID+"/status"), "", map[string]string{"status": "Gone"}, nil); r.status != http.StatusBadRequest {
		t.Errorf("an unknown status: %d", r.status)
	}
}
