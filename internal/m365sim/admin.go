package m365sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// adminMux serves the admin API: JSON in and out, no authentication, never
// recorded in request logs. Errors answer {"error": "..."} with 400 (invalid
// input), 403 (purchase blocked by policy), 404 (unknown tenant, product,
// subscription, relationship, device code) or 409 (exists already, not enough
// seats, already deleted, device code not pending).
//
//	GET    /_sim/info                                   endpoints, admin URL, CA PEM
//	GET    /_sim/tenants                                list tenants
//	POST   /_sim/tenants                                add a tenant (TenantConfig) → 201 TenantInfo
//	GET    /_sim/tenants/{tid}                          one tenant
//	POST   /_sim/tenants/{tid}/apps                     register an app {clientId, secret, certificatePEM, federated{issuer, subject, audience, jwks}, permissions}
//	POST   /_sim/tenants/{tid}/delegated-users          {clientId, roles} → {refreshToken}
//	GET    /_sim/tenants/{tid}/products                 products with policy values
//	POST   /_sim/tenants/{tid}/products                 add a product {productId, productName, policyValue?} → 201
//	GET    /_sim/tenants/{tid}/products/{pid}           {productId, policyValue}
//	PUT    /_sim/tenants/{tid}/products/{pid}           set the policy by hand {policyValue}
//	PUT    /_sim/tenants/{tid}/offerTypes/{offerType}   set an offer type's policy {policyValue}
//	GET    /_sim/tenants/{tid}/subscriptions            subscriptions (with billing account and users)
//	POST   /_sim/tenants/{tid}/purchases                self-service purchase (PurchaseRequest) → 201 Subscription
//	POST   /_sim/tenants/{tid}/subscriptions/{sid}/renew|takeover|cancel → Subscription
//	PUT    /_sim/tenants/{tid}/subscriptions/{sid}/status {status}
//	GET    /_sim/tenants/{tid}/users                    users with their licences
//	GET    /_sim/tenants/{tid}/settings                 acquisition settings (TenantSettings)
//	PATCH  /_sim/tenants/{tid}/settings                 flip settings by hand (TenantSettingsUpdate) → TenantSettings
//	GET    /_sim/tenants/{tid}/settings/authorizationPolicy  the whole AuthorizationPolicy
//	GET    /_sim/tenants/{tid}/settings/writes          settings PATCHes received over Graph ([]SettingsWrite)
//	GET    /_sim/tenants/{tid}/customers                GDAP customers ([]DelegatedAdminCustomer)
//	POST   /_sim/tenants/{tid}/customers                add a relationship (CustomerRequest) → 201 AdminRelationship
//	DELETE /_sim/tenants/{tid}/customers/{cid}          end every relationship with a customer → []AdminRelationship
//	GET    /_sim/tenants/{tid}/relationships            admin relationships, ended ones too
//	POST   /_sim/tenants/{tid}/relationships/{rid}/end  end one relationship → AdminRelationship
//	GET    /_sim/tenants/{tid}/devicecodes              device authorizations ([]DeviceCode)
//	POST   /_sim/tenants/{tid}/devicecodes/{code}/approve  sign in (DeviceApproval, optional) → User
//	POST   /_sim/tenants/{tid}/devicecodes/{code}/decline  → DeviceCode
//	POST   /_sim/tenants/{tid}/devicecodes/{code}/slowdown the next poll answers slow_down → DeviceCode
//	POST   /_sim/tenants/{tid}/faults                   inject a Fault (latency: "250ms" or nanoseconds)
//	DELETE /_sim/tenants/{tid}/faults                   clear faults
//	GET    /_sim/tenants/{tid}/requests                 RequestLog
//	DELETE /_sim/tenants/{tid}/requests                 reset the request log
//
// faultAdminRoutes adds traffic (latency, throttling), fleet request statistics, the leak sink and
// the subscription lifecycle actions.
func (s *Server) adminMux() *http.ServeMux {
	mux := http.NewServeMux()
	const t = "/_sim/tenants/{tid}"
	mux.HandleFunc("GET /_sim/info", s.adminInfo)
	mux.HandleFunc("GET /_sim/tenants", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Tenants()) })
	mux.HandleFunc("POST /_sim/tenants", s.adminAddTenant)
	mux.HandleFunc("GET "+t, func(w http.ResponseWriter, r *http.Request) {
		v, err := s.Tenant(r.PathValue("tid"))
		adminReply(w, http.StatusOK, v, err)
	})
	mux.HandleFunc("POST "+t+"/apps", s.adminRegisterApp)
	mux.HandleFunc("POST "+t+"/delegated-users", s.adminDelegated)
	mux.HandleFunc("GET "+t+"/products", func(w http.ResponseWriter, r *http.Request) {
		v, err := s.Products(r.PathValue("tid"))
		adminReply(w, http.StatusOK, v, err)
	})
	mux.HandleFunc("POST "+t+"/products", s.adminAddProduct)
	mux.HandleFunc("GET "+t+"/products/{pid}", s.adminGetPolicy)
	mux.HandleFunc("PUT "+t+"/products/{pid}", s.adminSetPolicy)
	mux.HandleFunc("PUT "+t+"/offerTypes/{ot}", s.adminSetOfferType)
	mux.HandleFunc("GET "+t+"/subscriptions", func(w http.ResponseWriter, r *http.Request) {
		v, err := s.Subscriptions(r.PathValue("tid"))
		adminReply(w, http.StatusOK, v, err)
	})
	mux.HandleFunc("POST "+t+"/purchases", s.adminPurchase)
	mux.HandleFunc("POST "+t+"/subscriptions/{sid}/{action}", s.adminSubscriptionAction)
	mux.HandleFunc("PUT "+t+"/subscriptions/{sid}/status", s.adminSubscriptionWith("status", false, s.SetSubscriptionStatus))
	mux.HandleFunc("GET "+t+"/users", func(w http.ResponseWriter, r *http.Request) {
		v, err := s.Users(r.PathValue("tid"))
		adminReply(w, http.StatusOK, v, err)
	})
	s.adminAcquisitionRoutes(mux, t)
	s.servicePrincipalRoutes(mux, t)
	mux.HandleFunc("POST "+t+"/faults", s.adminInjectFault)
	mux.HandleFunc("DELETE "+t+"/faults", func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.lookup(r.PathValue("tid")); err != nil {
			adminError(w, err)
			return
		}
		s.ClearFaults(r.PathValue("tid"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET "+t+"/requests", func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.lookup(r.PathValue("tid")); err != nil {
			adminError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, s.Requests(r.PathValue("tid")))
	})
	mux.HandleFunc("DELETE "+t+"/requests", func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.lookup(r.PathValue("tid")); err != nil {
			adminError(w, err)
			return
		}
		s.ResetRequests(r.PathValue("tid"))
		w.WriteHeader(http.StatusNoContent)
	})
	s.faultAdminRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no admin route " + r.Method + " " + r.URL.Path})
	})
	return mux
}

// adminReply writes (v, err) as the admin API answer.
func adminReply(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		adminError(w, err)
		return
	}
	writeJSON(w, status, v)
}

// adminError maps Go API errors to statuses.
func adminError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrTenantNotFound), errors.Is(err, ErrProductNotFound), errors.Is(err, ErrSubscriptionNotFound),
		errors.Is(err, ErrRelationshipNotFound), errors.Is(err, ErrDeviceCodeNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrTenantExists), errors.Is(err, ErrProductExists), errors.Is(err, ErrNotEnoughSeats), errors.Is(err, ErrSubscriptionDeleted),
		errors.Is(err, ErrDeviceCodeNotPending):
		status = http.StatusConflict
	case errors.Is(err, ErrPurchaseBlocked):
		status = http.StatusForbidden
	case errors.Is(err, ErrInvalid):
		status = http.StatusBadRequest
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// decodeBody reads a JSON body into v; it answers 400 itself on failure.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := readLimited(r.Body)
	if err != nil {
		adminError(w, fmt.Errorf("%w: body: %v", ErrInvalid, err))
		return false
	}
	return decodeRaw(w, b, v)
}

// decodeRaw decodes a JSON body already read; it answers 400 itself on failure.
func decodeRaw(w http.ResponseWriter, b []byte, v any) bool {
	if err := json.Unmarshal(b, v); err != nil {
		adminError(w, fmt.Errorf("%w: body: %v", ErrInvalid, err))
		return false
	}
	return true
}

func (s *Server) adminInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"endpoints": s.Endpoints(), "adminURL": s.AdminURL(), "caPEM": string(s.caPEM)})
}

func (s *Server) adminAddTenant(w http.ResponseWriter, r *http.Request) {
	var cfg TenantConfig
	if decodeBody(w, r, &cfg) {
		v, err := s.AddTenant(cfg)
		adminReply(w, http.StatusCreated, v, err)
	}
}

// AppRequest is the admin API's JSON form of App.
type AppRequest struct {
	ClientID       string `json:"clientId"`
	Secret         string `json:"secret,omitempty"`
	CertificatePEM string `json:"certificatePEM,omitempty"`
	Federated      *struct {
		Issuer   string          `json:"issuer"`
		Subject  string          `json:"subject"`
		Audience string          `json:"audience,omitempty"`
		JWKS     json.RawMessage `json:"jwks"`
	} `json:"federated,omitempty"`
	Permissions  []string `json:"permissions"`
	PublicClient bool     `json:"publicClient,omitempty"`
}

// App converts the request to an App.
func (a AppRequest) App() App {
	app := App{ClientID: a.ClientID, Secret: a.Secret, Permissions: a.Permissions, PublicClient: a.PublicClient}
	if a.CertificatePEM != "" {
		app.CertificatePEM = []byte(a.CertificatePEM)
	}
	if f := a.Federated; f != nil {
		app.Federated = &FederatedCredential{Issuer: f.Issuer, Subject: f.Subject, Audience: f.Audience, JWKS: f.JWKS}
	}
	return app
}

func (s *Server) adminRegisterApp(w http.ResponseWriter, r *http.Request) {
	var req AppRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if err := s.RegisterApp(r.PathValue("tid"), req.App()); err != nil {
		adminError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"clientId": req.ClientID, "permissions": req.Permissions})
}

func (s *Server) adminDelegated(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClientID string   `json:"clientId"`
		Roles    []string `json:"roles"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	rt, err := s.RegisterDelegatedUser(r.PathValue("tid"), req.ClientID, req.Roles)
	if err != nil {
		adminError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"refreshToken": rt})
}

func (s *Server) adminAddProduct(w http.ResponseWriter, r *http.Request) {
	var req productRequest
	if !decodeBody(w, r, &req) {
		return
	}
	p, err := req.product()
	if err == nil {
		err = s.AddProduct(r.PathValue("tid"), p)
	}
	if err != nil {
		adminError(w, err)
		return
	}
	v, _ := s.Policy(r.PathValue("tid"), p.ID)
	p.PolicyValue, p.ReplicationLag = v, 0
	writeJSON(w, http.StatusCreated, p)
}

func (s *Server) adminGetPolicy(w http.ResponseWriter, r *http.Request) {
	v, err := s.Policy(r.PathValue("tid"), r.PathValue("pid"))
	if err != nil {
		adminError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"productId": r.PathValue("pid"), "policyValue": v})
}

type policyValueBody struct {
	PolicyValue string `json:"policyValue"`
}

func (s *Server) adminSetPolicy(w http.ResponseWriter, r *http.Request) {
	var b policyValueBody
	if !decodeBody(w, r, &b) {
		return
	}
	if err := s.SetPolicy(r.PathValue("tid"), r.PathValue("pid"), b.PolicyValue); err != nil {
		adminError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"productId": r.PathValue("pid"), "policyValue": b.PolicyValue})
}

func (s *Server) adminSetOfferType(w http.ResponseWriter, r *http.Request) {
	var b policyValueBody
	if !decodeBody(w, r, &b) {
		return
	}
	if err := s.SetOfferTypePolicy(r.PathValue("tid"), r.PathValue("ot"), b.PolicyValue); err != nil {
		adminError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"offerType": r.PathValue("ot"), "policyValue": b.PolicyValue})
}

func (s *Server) adminPurchase(w http.ResponseWriter, r *http.Request) {
	var p PurchaseRequest
	if decodeBody(w, r, &p) {
		v, err := s.Purchase(r.PathValue("tid"), p)
		adminReply(w, http.StatusCreated, v, err)
	}
}

func (s *Server) adminSubscriptionAction(w http.ResponseWriter, r *http.Request) {
	actions := map[string]func(string, string) (Subscription, error){"renew": s.Renew, "takeover": s.TakeOver, "cancel": s.Cancel}
	fn, ok := actions[r.PathValue("action")]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown action " + r.PathValue("action") + " (renew, takeover, cancel)"})
		return
	}
	v, err := fn(r.PathValue("tid"), r.PathValue("sid"))
	adminReply(w, http.StatusOK, v, err)
}

// faultRequest accepts latency and staleFor as duration strings ("250ms") or
// nanoseconds.
type faultRequest struct {
	Fault
	Latency  json.RawMessage `json:"latency,omitempty"`
	StaleFor json.RawMessage `json:"staleFor,omitempty"`
}

func (s *Server) adminInjectFault(w http.ResponseWriter, r *http.Request) {
	var req faultRequest
	if !decodeBody(w, r, &req) {
		return
	}
	f := req.Fault
	if err := parseDurations(durationField{req.Latency, &f.Latency}, durationField{req.StaleFor, &f.StaleFor}); err != nil {
		adminError(w, err)
		return
	}
	if err := s.InjectFault(r.PathValue("tid"), f); err != nil {
		adminError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, f)
}

func parseLatency(raw json.RawMessage) (time.Duration, error) {
	var str string
	if json.Unmarshal(raw, &str) == nil {
		d, err := time.ParseDuration(str)
		if err != nil {
			return 0, fmt.Errorf("%w: duration %q", ErrInvalid, str)
		}
		return d, nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("%w: a duration must be a string (\"250ms\") or nanoseconds", ErrInvalid)
	}
	return time.Duration(n), nil
}
