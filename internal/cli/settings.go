package cli

import (
	"context"
	"fmt"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

// The tenant-wide acquisition settings (spec.tenantSettings) as export and
// plan read them: one Graph GET per resource, the controller's own
// desired-state code (internal/plan) to decide, and a warning instead of a
// failure when a resource cannot be read for want of a permission or because
// the cloud does not offer it.

// settingsGetters read each settings resource, as the controller's
// settingsResources do.
var settingsGetters = map[v1.SettingsResource]func(graph.Tenant, context.Context) (graph.Settings, error){
	v1.ResourceAuthorizationPolicy: graph.Tenant.GetAuthorizationPolicy,
	v1.ResourceAppsAndServices:     graph.Tenant.GetAppsAndServices,
}

// settingsRead is what reading the settings resources gave: the properties
// of each resource read, and why the others were not.
type settingsRead struct {
	reads    map[v1.SettingsResource]map[string]bool
	warnings []string
}

// readSettings reads every resource that want selects. A 403 or 401 names
// the missing permission, a 404 or 400 of the beta resource says the cloud
// does not offer it: both are warnings. Any other failure is an error.
func readSettings(ctx context.Context, t graph.Tenant, want func(*plan.SettingsResource) bool) (settingsRead, error) {
	out := settingsRead{reads: map[v1.SettingsResource]map[string]bool{}}
	for _, res := range plan.SettingsResources {
		if !want(res) {
			continue
		}
		props, err := settingsGetters[res.Name](t, ctx)
		switch {
		case err == nil:
			out.reads[res.Name] = props
		case graph.NotOffered(err):
			out.warnings = append(out.warnings, fmt.Sprintf("this cloud does not offer %s, so %s cannot be read or managed here", res.What, settingNames(res)))
		case m365.KindOf(err) == m365.Forbidden || m365.KindOf(err) == m365.Unauthorized:
			out.warnings = append(out.warnings, fmt.Sprintf("missing Graph permission %s to read %s (%s): grant it to the app to see these settings", res.ReadPermission, settingNames(res), res.What))
		default:
			return out, fmt.Errorf("reading the tenant settings (%s): %w", res.What, err)
		}
	}
	return out, nil
}

// settingNames lists the settings res holds.
func settingNames(res *plan.SettingsResource) string {
	var names []string
	for _, s := range plan.TenantSettings {
		if s.Resource == res {
			names = append(names, string(s.Name))
		}
	}
	return strings.Join(names, " and ")
}

// exportTenantSettings sets spec.tenantSettings to every setting's current
// value; a setting that could not be read is Unmanaged (the reason went to
// stderr).
func exportTenantSettings(st *tenantState, _ exportOptions, spec *yamlMap, warn func(string, ...any)) error {
	for _, w := range st.settings.warnings {
		warn("%s; exported as Unmanaged", w)
	}
	m := &yamlMap{}
	for _, s := range plan.TenantSettings {
		value := string(v1.SettingUnmanaged)
		if v, ok := s.Observed(st.settings.reads[s.Resource.Name]); ok {
			value = string(v)
		} else if _, read := st.settings.reads[s.Resource.Name]; read {
			warn("%s answered without %s (%s); exported as Unmanaged", s.Resource.What, s.Field, s.Name)
		}
		m.addNode(string(s.Name), &yaml3.Node{Kind: yaml3.ScalarNode, Value: value}, "")
		m.content[len(m.content)-1].LineComment = s.Path
	}
	spec.addNode("tenantSettings", m.node(), "Tenant-wide settings that let users acquire licences past the product policies.")
	return nil
}

// settingsChanges reads the resources holding a setting spec manages and
// lists the settings that differ, with warnings for what could not be read.
func settingsChanges(ctx context.Context, t graph.Tenant, spec *v1.TenantSettings) ([]change, []string, error) {
	read, err := readSettings(ctx, t, func(res *plan.SettingsResource) bool { return plan.SettingsManagedOn(spec, res) })
	if err != nil {
		return nil, nil, err
	}
	var out []change
	for _, target := range plan.ComputeSettings(spec, read.reads) {
		if target.Differs() {
			out = append(out, change{Kind: "tenantSetting", ID: string(target.Name), Name: target.Path,
				From: string(target.Observed), To: string(target.Desired), Why: "tenantSettings"})
		}
	}
	return out, read.warnings, nil
}
