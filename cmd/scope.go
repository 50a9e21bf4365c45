package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/controllers"
)

// defaultLeaderElectionID is the Lease name of an unsharded controller.
const defaultLeaderElectionID = "purchase-policy-controller.tenantpolicy.io"

// leaderElectionID returns the Lease name: the flag when set, otherwise one
// derived from the shard's label selector, so that two shard Deployments in
// one namespace elect two leaders. The derivation hashes the selector's
// canonical form (requirements sorted by key), so `a=1,b=2` and `b=2,a=1`
// share a Lease; no selector keeps the historical name.
func leaderElectionID(flagValue string, selector labels.Selector) (string, error) {
	if flagValue != "" {
		if errs := validation.IsDNS1123Subdomain(flagValue); len(errs) > 0 {
			return "", fmt.Errorf("--leader-election-id %q: %s", flagValue, strings.Join(errs, "; "))
		}
		return flagValue, nil
	}
	if selector == nil || selector.Empty() {
		return defaultLeaderElectionID, nil
	}
	sum := sha256.Sum256([]byte(selector.String()))
	return "purchase-policy-controller-" + hex.EncodeToString(sum[:])[:10] + ".tenantpolicy.io", nil
}

// parseSelector parses --watch-label-selector; empty selects everything.
func parseSelector(s string) (labels.Selector, error) {
	if s == "" {
		return labels.Everything(), nil
	}
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("--watch-label-selector: %w", err)
	}
	return sel, nil
}

// parseNamespaces parses --watch-namespaces (comma-separated); empty means
// every namespace.
func parseNamespaces(s string) ([]string, error) {
	var out []string
	for _, ns := range strings.Split(s, ",") {
		ns = strings.TrimSpace(ns)
		if ns == "" {
			continue
		}
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return nil, fmt.Errorf("--watch-namespaces: %q: %s", ns, strings.Join(errs, "; "))
		}
		out = append(out, ns)
	}
	return out, nil
}

// cacheOptions limits the manager's cache to the shard's policies and
// policy sets and, in namespace-scoped mode, to the watched namespaces:
// objects elsewhere are never seen, so never reconciled.
func cacheOptions(selector labels.Selector, namespaces []string) cache.Options {
	var o cache.Options
	if !selector.Empty() {
		o.ByObject = map[client.Object]cache.ByObject{&v1.TenantPurchasePolicy{}: {Label: selector}, &v1.TenantPurchasePolicySet{}: {Label: selector}}
	}
	if len(namespaces) > 0 {
		o.DefaultNamespaces = make(map[string]cache.Config, len(namespaces))
		for _, ns := range namespaces {
			o.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return o
}

// withTenantLeases adds the tenant Leases of the Lease namespace to what the
// cache holds (controllers.LeaseCache): every shard and every watched
// namespace shares them.
func withTenantLeases(byObject map[client.Object]cache.ByObject, leaseNS string) map[client.Object]cache.ByObject {
	if byObject == nil {
		byObject = map[client.Object]cache.ByObject{}
	}
	byObject[&coordinationv1.Lease{}] = controllers.LeaseCache(leaseNS)
	return byObject
}

// holdsEveryPolicy tells whether a cache built with o watches every policy
// of the cluster: no label selector, no namespace restriction.
func holdsEveryPolicy(o cache.Options) bool {
	return len(o.ByObject) == 0 && len(o.DefaultNamespaces) == 0
}
