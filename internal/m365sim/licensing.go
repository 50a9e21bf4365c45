package m365sim

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
)

// Licensing API paths.
const (
	licensingPolicies = "/v1.0/policies"
	licensingPolicy   = licensingPolicies + "/" + PolicyID
)

// offerTypeNames are the display names of the offer types.
var offerTypeNames = map[string]string{
	"SaaS":           "Software as a service (SaaS) apps",
	"POWERBIVISUALS": "Power BI visuals",
	"DYNAMICSCE":     "Dynamics 365 Customer Engagement apps",
	"DYNAMICSBC":     "Dynamics 365 Business Central apps",
}

// policyItem is one item of the licensing API.
type policyItem struct {
	PolicyID    string `json:"policyId"`
	PolicyValue string `json:"policyValue"`
	ProductName string `json:"productName"`
	ProductID   string `json:"productId"`
	OfferType   string `json:"offerType,omitempty"`
}

// licensingMux serves the self-service purchase policy API (docs/microsoft-api.md, "Licensing").
func (s *Server) licensingMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+licensingPolicies, s.licensing(false, s.handleListPolicies))
	mux.HandleFunc("GET "+licensingPolicy, s.licensing(false, s.handleGetPolicy))
	mux.HandleFunc("GET "+licensingPolicy+"/products", s.licensing(false, s.handleListProducts))
	mux.HandleFunc("GET "+licensingPolicy+"/products/{id}", s.licensing(false, s.handleGetProduct))
	mux.HandleFunc("PUT "+licensingPolicy+"/products/{id}", s.licensing(true, s.handlePutProduct))
	mux.HandleFunc("GET "+licensingPolicy+"/offerTypes/{id}", s.licensing(false, s.handleGetOfferType))
	mux.HandleFunc("PUT "+licensingPolicy+"/offerTypes/{id}", s.licensing(true, s.handlePutOfferType))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		styleOf(EndpointLicensing).write(w, http.StatusNotFound, "NotFound", "No route matches "+r.Method+" "+r.URL.Path+".")
	})
	return mux
}

// licensing wraps a handler with the permission check: reads need
// Policy.Read or Policy.ReadWrite (delegated: Global Administrator, Billing
// Administrator or Global Reader), writes need Policy.ReadWrite (delegated:
// Global or Billing Administrator); otherwise 403.
func (s *Server) licensing(write bool, h func(http.ResponseWriter, *http.Request, *tenant)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := callOf(r)
		if !licensingAllowed(c.claims, write) {
			styleOf(EndpointLicensing).forbidden(w, "The caller does not have the permission or role required for this operation.")
			return
		}
		h(w, r, c.tenant)
	}
}

func licensingAllowed(c *accessClaims, write bool) bool {
	if c.delegated() {
		if write {
			return c.hasDirectoryRole(RoleGlobalAdmin, RoleBillingAdmin)
		}
		return c.hasDirectoryRole(RoleGlobalAdmin, RoleBillingAdmin, RoleGlobalReader)
	}
	if write {
		return c.hasRole(PermPolicyReadWrite)
	}
	return c.hasRole(PermPolicyRead, PermPolicyReadWrite)
}

func policyDescription() map[string]any {
	return map[string]any{"id": PolicyID, "description": "Allow users to make self-service purchases and trials of products.", "defaultValue": PolicyEnabled}
}

func (s *Server) handleListPolicies(w http.ResponseWriter, _ *http.Request, _ *tenant) {
	writeJSON(w, http.StatusOK, map[string]any{"items": []any{policyDescription()}})
}

func (s *Server) handleGetPolicy(w http.ResponseWriter, _ *http.Request, _ *tenant) {
	writeJSON(w, http.StatusOK, policyDescription())
}

// handleListProducts lists products (scope absent or "product") or offer
// types (scope=OfferType); any other scope is 400 "Invalid scope.".
func (s *Server) handleListProducts(w http.ResponseWriter, r *http.Request, t *tenant) {
	scope := r.URL.Query().Get("scope")
	var items []policyItem
	now := s.now()
	t.mu.Lock()
	switch {
	case scope == "" || strings.EqualFold(scope, "product"):
		items = make([]policyItem, 0, len(t.products))
		for _, p := range t.products {
			items = append(items, t.readItem(p, now))
		}
	case strings.EqualFold(scope, "OfferType"):
		for _, o := range OfferTypes {
			items = append(items, offerTypeItem(o, t.offerTypes[o]))
		}
	}
	t.mu.Unlock()
	if items == nil {
		styleOf(EndpointLicensing).write(w, http.StatusBadRequest, "BadRequest", "Invalid scope.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

func productItem(p *Product) policyItem {
	return policyItem{PolicyID: PolicyID, PolicyValue: p.PolicyValue, ProductName: p.Name, ProductID: p.ID}
}

func offerTypeItem(o, v string) policyItem {
	return policyItem{PolicyID: PolicyID, PolicyValue: v, ProductName: offerTypeNames[o], ProductID: o, OfferType: o}
}

func writeUnknownProduct(w http.ResponseWriter, id string) {
	styleOf(EndpointLicensing).write(w, http.StatusNotFound, "Unknown",
		fmt.Sprintf("GetProductDetailsByProductIdAsync failed for productId %s: the product was not found.", clip(id)))
}

func (s *Server) handleGetProduct(w http.ResponseWriter, r *http.Request, t *tenant) {
	id := r.PathValue("id")
	now := s.now()
	t.mu.Lock()
	p, ok := t.productIdx[strings.ToUpper(id)]
	var item policyItem
	if ok {
		item = t.readItem(p, now)
	}
	t.mu.Unlock()
	if !ok {
		writeUnknownProduct(w, id)
		return
	}
	writeJSON(w, http.StatusOK, item)
}

// readPolicyValue checks Content-Type (415 unless application/json) and
// the body {"policyValue": "..."} (400 unless a known value).
func readPolicyValue(w http.ResponseWriter, r *http.Request) (string, bool) {
	st := styleOf(EndpointLicensing)
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		st.write(w, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "The request Content-Type must be application/json.")
		return "", false
	}
	body, err := readLimited(r.Body)
	var req struct {
		PolicyValue string `json:"policyValue"`
	}
	if err != nil || json.Unmarshal(body, &req) != nil {
		st.write(w, http.StatusBadRequest, "BadRequest", "The request body is not valid JSON.")
		return "", false
	}
	if !validPolicyValue(req.PolicyValue) {
		st.write(w, http.StatusBadRequest, "BadRequest",
			fmt.Sprintf("Invalid policy value '%s'. Valid values are Enabled, Disabled and OnlyTrialsWithoutPaymentMethod.", clip(req.PolicyValue)))
		return "", false
	}
	return req.PolicyValue, true
}

func (s *Server) handlePutProduct(w http.ResponseWriter, r *http.Request, t *tenant) {
	id := r.PathValue("id")
	if !s.productWritable(t, id) {
		writeUnknownProduct(w, id)
		return
	}
	v, ok := readPolicyValue(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.putProduct(r, t, id, v))
}

func (s *Server) handleGetOfferType(w http.ResponseWriter, r *http.Request, t *tenant) {
	t.mu.Lock()
	o, ok := t.offerType(r.PathValue("id"))
	item := offerTypeItem(o, t.offerTypes[o])
	t.mu.Unlock()
	if !ok {
		styleOf(EndpointLicensing).write(w, http.StatusNotFound, "Unknown", "Unknown offer type "+clip(r.PathValue("id"))+".")
		return
	}
	writeJSON(w, http.StatusOK, item)
}

func (s *Server) handlePutOfferType(w http.ResponseWriter, r *http.Request, t *tenant) {
	t.mu.Lock()
	o, ok := t.offerType(r.PathValue("id"))
	t.mu.Unlock()
	if !ok {
		styleOf(EndpointLicensing).write(w, http.StatusNotFound, "Unknown", "Unknown offer type "+clip(r.PathValue("id"))+".")
		return
	}
	v, ok := readPolicyValue(w, r)
	if !ok {
		return
	}
	t.mu.Lock()
	t.offerTypes[o] = v
	item := offerTypeItem(o, v)
	t.mu.Unlock()
	writeJSON(w, http.StatusOK, item)
}
