package main

import (
	"context"
	"encoding/json"
	"os"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// objectSizes is how big a converged policy is as the API server stores and
// serves it: every status patch is applied to, validated against and
// written as the whole object, so its size sets the status-patch ceiling.
type objectSizes struct {
	Policies int `json:"policies"`
	// MeanBytes is the mean JSON size of a policy, managedFields included.
	MeanBytes int `json:"meanBytes"`
	// MeanStatusBytes and MeanManagedFieldsBytes are the parts of it that
	// status and metadata.managedFields take.
	MeanStatusBytes        int `json:"meanStatusBytes"`
	MeanManagedFieldsBytes int `json:"meanManagedFieldsBytes"`
}

// measureObjects reads the fleet's policies and sizes them; the first one
// is kept as policy-sample.json in the bench files.
func (b *bench) measureObjects(ctx context.Context) error {
	var list v1.TenantPurchasePolicyList
	if err := b.cp.kube.List(ctx, &list, client.InNamespace(benchNamespace)); err != nil {
		return err
	}
	var total, status, managed int
	for i := range list.Items {
		p := &list.Items[i]
		all, err := json.Marshal(p)
		if err != nil {
			return err
		}
		st, err := json.Marshal(p.Status)
		if err != nil {
			return err
		}
		mf, err := json.Marshal(p.ManagedFields)
		if err != nil {
			return err
		}
		total, status, managed = total+len(all), status+len(st), managed+len(mf)
		if i == 0 {
			if err := os.WriteFile(b.path("policy-sample.json"), all, 0o600); err != nil {
				return err
			}
		}
	}
	n := len(list.Items)
	if n == 0 {
		return nil
	}
	b.rep.Objects = &objectSizes{Policies: n, MeanBytes: total / n, MeanStatusBytes: status / n, MeanManagedFieldsBytes: managed / n}
	return nil
}
