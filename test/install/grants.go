package install

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Grant is one permission: a verb on a resource (group/resource[/sub]) or a
// non-resource URL, cluster-wide (Namespace "") or in one namespace.
type Grant struct {
	Namespace string
	Resource  string // "group/resource", "" group as "core"; or a non-resource URL
	Verb      string
	// ResourceName limits the grant to one object ("" = any).
	ResourceName string
}

func (g Grant) String() string {
	where := "cluster-wide"
	if g.Namespace != "" {
		where = "in " + g.Namespace
	}
	s := g.Verb + " " + g.Resource
	if g.ResourceName != "" {
		s += " named " + g.ResourceName
	}
	return s + " " + where
}

// CompareGrants orders grants for stable diffs.
func CompareGrants(a, b Grant) int {
	return strings.Compare(a.Namespace+"|"+a.Resource+"|"+a.Verb+"|"+a.ResourceName, b.Namespace+"|"+b.Resource+"|"+b.Verb+"|"+b.ResourceName)
}

// GrantsTo returns every permission the rendered objects give the user
// (a ServiceAccount's "system:serviceaccount:ns:name"), through
// RoleBindings and ClusterRoleBindings naming it, or a group it is in.
// Wildcards are kept as "*" so an allow-list comparison sees them.
func GrantsTo(objs []*unstructured.Unstructured, username string) ([]Grant, error) {
	roles := map[string][]rbacv1.PolicyRule{} // "Role/ns/name" or "ClusterRole//name"
	var bindings []rbacv1.RoleBinding         // ClusterRoleBindings with Namespace ""
	for _, o := range objs {
		switch o.GetKind() {
		case "Role", "ClusterRole":
			var r rbacv1.ClusterRole // a Role has the same rules field
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &r); err != nil {
				return nil, err
			}
			if r.AggregationRule != nil {
				return nil, fmt.Errorf("ClusterRole %s aggregates other roles: its rules cannot be checked here", o.GetName())
			}
			roles[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()] = r.Rules
		case "RoleBinding", "ClusterRoleBinding":
			var b rbacv1.RoleBinding
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &b); err != nil {
				return nil, err
			}
			bindings = append(bindings, b)
		}
	}
	var grants []Grant
	for _, b := range bindings {
		if !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return names(s, username) }) {
			continue
		}
		key := "ClusterRole//" + b.RoleRef.Name
		if b.RoleRef.Kind == "Role" {
			key = "Role/" + b.Namespace + "/" + b.RoleRef.Name
		}
		rules, ok := roles[key]
		if !ok {
			return nil, fmt.Errorf("binding %s/%s refers to %s, which the manifests do not contain", b.Namespace, b.Name, key)
		}
		grants = append(grants, expand(b.Namespace, rules)...)
	}
	slices.SortFunc(grants, CompareGrants)
	return slices.Compact(grants), nil
}

// names reports whether an RBAC subject covers the ServiceAccount user.
func names(s rbacv1.Subject, username string) bool {
	parts := strings.Split(username, ":") // system:serviceaccount:ns:name
	ns, name := parts[2], parts[3]
	switch s.Kind {
	case rbacv1.ServiceAccountKind:
		return s.Name == name && s.Namespace == ns
	case rbacv1.UserKind:
		return s.Name == username
	case rbacv1.GroupKind:
		return slices.Contains([]string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}, s.Name)
	}
	return false
}

// expand turns rules into one Grant per group, resource, verb and name.
func expand(namespace string, rules []rbacv1.PolicyRule) []Grant {
	var out []Grant
	for _, r := range rules {
		for _, verb := range r.Verbs {
			for _, url := range r.NonResourceURLs {
				out = append(out, Grant{Resource: url, Verb: verb})
			}
			for _, group := range r.APIGroups {
				if group == "" {
					group = "core"
				}
				for _, res := range r.Resources {
					names := r.ResourceNames
					if len(names) == 0 {
						names = []string{""}
					}
					for _, n := range names {
						out = append(out, Grant{Namespace: namespace, Resource: group + "/" + res, Verb: verb, ResourceName: n})
					}
				}
			}
		}
	}
	return out
}
