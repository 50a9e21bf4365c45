package m365sim

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// graphContextBase prefixes @odata.context values, as Graph does.
const graphContextBase = "https://graph.microsoft.com/v1.0/$metadata#"

// graphMux serves the Graph subset (docs/microsoft-api.md, "Microsoft Graph").
func (s *Server) graphMux() *http.ServeMux {
	mux := http.NewServeMux()
	orgRead := []string{PermOrganizationRead, "Directory.Read.All"}
	userRead := []string{PermUserRead, "Directory.Read.All"}
	mux.HandleFunc("GET /v1.0/directory/subscriptions", s.graph(orgRead, s.handleSubscriptions))
	mux.HandleFunc("GET /v1.0/directory/subscriptions/{id}", s.graph(orgRead, s.handleSubscription))
	mux.HandleFunc("GET /v1.0/subscribedSkus", s.graph(orgRead, s.handleSubscribedSkus))
	mux.HandleFunc("GET /v1.0/users", s.graph(userRead, s.handleUsers))
	mux.HandleFunc("GET /v1.0/users/{id}", s.graph(userRead, s.handleUser))
	s.graphSettingsRoutes(mux)
	s.graphPartnerRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		styleOf(EndpointGraph).write(w, http.StatusBadRequest, "BadRequest", "Resource not found for the segment '"+clip(lastSegment(r.URL.Path))+"'.")
	})
	return mux
}

func lastSegment(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// graph wraps a handler with the permission check (application roles or
// delegated scopes); otherwise 403 Authorization_RequestDenied.
func (s *Server) graph(perms []string, h func(http.ResponseWriter, *http.Request, *tenant)) http.HandlerFunc {
	return s.graphAllowed(func(c *accessClaims, _ *tenant) bool {
		if c.delegated() {
			return c.hasScope(perms...)
		}
		return c.hasRole(perms...)
	}, h)
}

// graphAllowed wraps a handler with a permission check on the token (and
// the tenant, for checks the resource makes itself); otherwise 403
// Authorization_RequestDenied.
func (s *Server) graphAllowed(allowed func(*accessClaims, *tenant) bool, h func(http.ResponseWriter, *http.Request, *tenant)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := callOf(r)
		if !allowed(c.claims, c.tenant) {
			styleOf(EndpointGraph).forbidden(w, "Insufficient privileges to complete the operation.")
			return
		}
		h(w, r, c.tenant)
	}
}

// graphTime formats a timestamp as Graph does.
func graphTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// companySubscription renders a subscription as Graph's companySubscription.
func companySubscription(sub *Subscription) map[string]any {
	plans := make([]any, 0, len(sub.ServiceStatus))
	for _, p := range sub.ServiceStatus {
		plans = append(plans, map[string]any{"servicePlanId": p.ServicePlanID, "servicePlanName": p.ServicePlanName,
			"provisioningStatus": p.ProvisioningStatus, "appliesTo": p.AppliesTo})
	}
	return map[string]any{
		"id": sub.ID, "commerceSubscriptionId": sub.CommerceSubscriptionID,
		"skuId": sub.SkuID, "skuPartNumber": sub.SkuPartNumber, "status": sub.Status,
		"totalLicenses": sub.TotalLicenses, "isTrial": sub.IsTrial,
		"createdDateTime": graphTime(sub.CreatedDateTime), "nextLifecycleDateTime": graphTime(sub.NextLifecycleDateTime),
		"ownerId": sub.OwnerID, "ownerTenantId": sub.OwnerTenantID, "ownerType": sub.OwnerType,
		"serviceStatus": plans,
	}
}

func (s *Server) handleSubscriptions(w http.ResponseWriter, r *http.Request, t *tenant) {
	t.mu.Lock()
	items := make([]map[string]any, 0, len(t.subOrder))
	for _, id := range t.subOrder {
		items = append(items, companySubscription(t.subs[id]))
	}
	t.mu.Unlock()
	s.writePage(w, r, "directory/subscriptions", items)
}

func (s *Server) handleSubscription(w http.ResponseWriter, r *http.Request, t *tenant) {
	t.mu.Lock()
	sub, ok := t.subs[r.PathValue("id")]
	var item map[string]any
	if ok {
		item = companySubscription(sub)
	}
	t.mu.Unlock()
	if !ok {
		styleOf(EndpointGraph).write(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource '"+clip(r.PathValue("id"))+"' does not exist or one of its queried reference-property objects are not present.")
		return
	}
	writeEntity(w, r, "directory/subscriptions/$entity", item)
}

// skuGroupKey groups subscriptions into subscribedSkus entries.
type skuGroupKey struct{ skuID, accountID string }

// subscribedSkus renders one entry per SKU and billing account. Prepaid
// units count the seats of subscriptions by status (Deleted ones count
// nowhere); consumedUnits counts assigned seats.
func (t *tenant) subscribedSkus() []map[string]any {
	type group struct {
		sub                                    *Subscription
		enabled, warning, suspended, lockedOut int
		consumed                               int
		ids                                    []string
	}
	var order []skuGroupKey
	groups := map[skuGroupKey]*group{}
	for _, id := range t.subOrder {
		sub := t.subs[id]
		k := skuGroupKey{sub.SkuID, sub.AccountID}
		g, ok := groups[k]
		if !ok {
			g = &group{sub: sub}
			groups[k] = g
			order = append(order, k)
		}
		g.ids = append(g.ids, sub.ID)
		g.consumed += len(sub.AssignedUsers)
		switch sub.Status {
		case StatusEnabled:
			g.enabled += sub.TotalLicenses
		case StatusWarning:
			g.warning += sub.TotalLicenses
		case StatusSuspended:
			g.suspended += sub.TotalLicenses
		case StatusLockedOut:
			g.lockedOut += sub.TotalLicenses
		}
	}
	out := make([]map[string]any, 0, len(order))
	for _, k := range order {
		g := groups[k]
		out = append(out, map[string]any{
			"id": k.accountID + "_" + k.skuID, "skuId": k.skuID, "skuPartNumber": g.sub.SkuPartNumber,
			"accountId": k.accountID, "accountName": g.sub.AccountName, "appliesTo": "User",
			"capabilityStatus": capabilityStatus(g.enabled, g.warning, g.suspended, g.lockedOut),
			"consumedUnits":    g.consumed,
			"prepaidUnits":     map[string]any{"enabled": g.enabled, "warning": g.warning, "suspended": g.suspended, "lockedOut": g.lockedOut},
			"subscriptionIds":  g.ids,
			"servicePlans":     []any{},
		})
	}
	return out
}

// capabilityStatus summarises a SKU's seats: Enabled if any seat is enabled,
// then Warning, Suspended, LockedOut; Deleted when nothing is left.
func capabilityStatus(enabled, warning, suspended, lockedOut int) string {
	switch {
	case enabled > 0:
		return StatusEnabled
	case warning > 0:
		return StatusWarning
	case suspended > 0:
		return StatusSuspended
	case lockedOut > 0:
		return StatusLockedOut
	}
	return StatusDeleted
}

func (s *Server) handleSubscribedSkus(w http.ResponseWriter, r *http.Request, t *tenant) {
	t.mu.Lock()
	items := t.subscribedSkus()
	t.mu.Unlock()
	s.writePage(w, r, "subscribedSkus", items)
}

// graphUser renders a user. Without $select Graph returns its default
// property set, which does not include the licence properties.
func (t *tenant) graphUser(u *user) map[string]any {
	assigned, states := []any{}, []any{}
	for _, sku := range t.userSkus(u) {
		assigned = append(assigned, map[string]any{"skuId": sku, "disabledPlans": []string{}})
		states = append(states, map[string]any{"skuId": sku, "assignedByGroup": nil, "state": "Active", "error": "None", "disabledPlans": []string{}})
	}
	given, _, _ := strings.Cut(u.DisplayName, " ")
	return map[string]any{
		"id": u.ID, "userPrincipalName": u.UPN, "displayName": u.DisplayName, "mail": u.UPN,
		"givenName": given, "surname": nil, "jobTitle": nil, "mobilePhone": nil, "officeLocation": nil,
		"preferredLanguage": "en-US", "businessPhones": []string{},
		"assignedLicenses": assigned, "licenseAssignmentStates": states,
	}
}

// defaultUserProps are the properties Graph v1.0 returns without $select.
var defaultUserProps = []string{"id", "userPrincipalName", "displayName", "mail", "givenName", "surname", "jobTitle",
	"mobilePhone", "officeLocation", "preferredLanguage", "businessPhones"}

func (s *Server) handleUser(w http.ResponseWriter, r *http.Request, t *tenant) {
	t.mu.Lock()
	u := t.findUser(r.PathValue("id"))
	var item map[string]any
	if u != nil {
		item = t.graphUser(u)
	}
	t.mu.Unlock()
	if u == nil {
		styleOf(EndpointGraph).write(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource '"+clip(r.PathValue("id"))+"' does not exist or one of its queried reference-property objects are not present.")
		return
	}
	if r.URL.Query().Get("$select") == "" {
		item = project(item, defaultUserProps)
	}
	writeEntity(w, r, "users/$entity", item)
}

func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request, t *tenant) {
	t.mu.Lock()
	items := make([]map[string]any, 0, len(t.userOrder))
	for _, id := range t.userOrder {
		items = append(items, t.graphUser(t.users[id]))
	}
	t.mu.Unlock()
	if r.URL.Query().Get("$select") == "" {
		for i := range items {
			items[i] = project(items[i], defaultUserProps)
		}
	}
	s.writePage(w, r, "users", items)
}

// selectFields parses $select ("" = all).
func selectFields(r *http.Request) []string {
	v := r.URL.Query().Get("$select")
	if v == "" {
		return nil
	}
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// project keeps only the named properties (case-insensitive, as Graph) and
// the annotations (@odata.type, @odata.etag).
func project(item map[string]any, fields []string) map[string]any {
	if fields == nil {
		return item
	}
	out := map[string]any{}
	for k, v := range item {
		if strings.HasPrefix(k, "@odata.") {
			out[k] = v
		}
		for _, f := range fields {
			if strings.EqualFold(k, f) {
				out[k] = v
			}
		}
	}
	return out
}

func writeEntity(w http.ResponseWriter, r *http.Request, context string, item map[string]any) {
	fields := selectFields(r)
	item = project(item, fields)
	ctx := graphContextBase + context
	if fields != nil {
		ctx = graphContextBase + strings.TrimSuffix(context, "/$entity") + "(" + strings.Join(fields, ",") + ")/$entity"
	}
	item["@odata.context"] = ctx
	writeJSON(w, http.StatusOK, item)
}

// writePage answers one page of a collection, honouring $select, $top and
// $skiptoken; @odata.nextLink is an absolute URL on the origin the client used.
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, context string, items []map[string]any) {
	s.writePageOf(w, r, graphContextBase+context, items, 0)
}

// writePageOf is writePage with a full @odata.context. With maxTop > 0 the
// default page is min(PageSize, maxTop) and $top may be 1..maxTop (otherwise
// 400); with maxTop 0, $top can only shrink the page.
func (s *Server) writePageOf(w http.ResponseWriter, r *http.Request, context string, items []map[string]any, maxTop int) {
	q := r.URL.Query()
	size, ok := pageSize(q, s.opts.PageSize, maxTop)
	if !ok {
		styleOf(EndpointGraph).write(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", clip(q.Get("$top")), maxTop))
		return
	}
	offset := 0
	if tok := q.Get("$skiptoken"); tok != "" {
		n, ok := decodeSkipToken(tok)
		if !ok {
			styleOf(EndpointGraph).write(w, http.StatusBadRequest, "Directory_InvalidSkipToken", "Invalid skip token.")
			return
		}
		offset = n
	}
	offset = min(offset, len(items))
	end := min(offset+size, len(items))
	fields := selectFields(r)
	page := make([]map[string]any, 0, end-offset)
	for _, it := range items[offset:end] {
		page = append(page, project(it, fields))
	}
	body := map[string]any{"@odata.context": context, "value": page}
	if end < len(items) {
		next := url.Values{}
		for k, v := range q {
			if k != "$skiptoken" {
				next[k] = v
			}
		}
		next.Set("$skiptoken", encodeSkipToken(end))
		body["@odata.nextLink"] = requestOrigin(r) + r.URL.Path + "?" + next.Encode()
	}
	writeJSON(w, http.StatusOK, body)
}

// pageSize returns the page size a request asks for (see writePageOf).
func pageSize(q url.Values, def, maxTop int) (int, bool) {
	top, err := strconv.Atoi(q.Get("$top"))
	switch {
	case maxTop > 0 && q.Has("$top") && (err != nil || top < 1 || top > maxTop):
		return 0, false
	case maxTop > 0 && err == nil:
		return top, true
	case maxTop > 0:
		return min(def, maxTop), true
	case err == nil && top > 0 && top < def:
		return top, true
	}
	return def, true
}

func encodeSkipToken(offset int) string {
	return "RFNwdAoAAQAAAA" + base64.RawURLEncoding.EncodeToString([]byte("offset:"+strconv.Itoa(offset)))
}

func decodeSkipToken(tok string) (int, bool) {
	rest, ok := strings.CutPrefix(tok, "RFNwdAoAAQAAAA")
	if !ok {
		return 0, false
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
