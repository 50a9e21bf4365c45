package graph_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
)

// GetSubscription reads one subscription by id; one that does not exist is
// NotFound, the evidence the reconciler needs before it records a handover.
func TestGetSubscription(t *testing.T) {
	sim, bought := startSim(t)
	dir := simClient(t, sim).For(simTenant, simCredential(t, sim, readerClientID))
	ctx := context.Background()

	got, err := dir.GetSubscription(ctx, bought.ID)
	if err != nil {
		t.Fatalf("GetSubscription: %v", err)
	}
	if diff := cmp.Diff(fromSim(bought), got); diff != "" {
		t.Errorf("subscription (-simulator +client):\n%s", diff)
	}

	_, err = dir.GetSubscription(ctx, "00000000-0000-0000-0000-00000000dead")
	if e, ok := m365.AsError(err); !ok || e.Kind != m365.NotFound || e.Op != graph.OpGetSubscription || e.StatusCode != 404 {
		t.Errorf("unknown subscription: got %v, want a NotFound %q error with status 404", err, graph.OpGetSubscription)
	}

	_, err = dir.GetSubscription(ctx, " ")
	if m365.KindOf(err) != m365.BadRequest {
		t.Errorf("empty ID: got %v, want BadRequest without a request", err)
	}
	if n := sim.Requests(simTenant).Counts["graph GET subscription"]; n != 2 {
		t.Errorf("simulator counted %d reads by id, want 2", n)
	}
}
