package m365sim

import (
	"bytes"
	"net/http"
)

// adminAcquisitionRoutes registers the admin routes of the acquisition
// settings, the partner relationships and the device code flow (see the
// adminMux comment for the list).
func (s *Server) adminAcquisitionRoutes(mux *http.ServeMux, t string) {
	mux.HandleFunc("GET "+t+"/settings", tenantGet(s.Settings))
	mux.HandleFunc("PATCH "+t+"/settings", tenantPost(http.StatusOK, s.UpdateSettings))
	mux.HandleFunc("GET "+t+"/settings/authorizationPolicy", tenantGet(s.AuthorizationPolicy))
	mux.HandleFunc("GET "+t+"/settings/writes", tenantGet(s.SettingsWrites))
	mux.HandleFunc("GET "+t+"/customers", tenantGet(s.DelegatedAdminCustomers))
	mux.HandleFunc("POST "+t+"/customers", tenantPost(http.StatusCreated, s.AddCustomerRelationship))
	mux.HandleFunc("DELETE "+t+"/customers/{cid}", tenantItem("cid", s.RemoveCustomer))
	mux.HandleFunc("GET "+t+"/relationships", tenantGet(s.AdminRelationships))
	mux.HandleFunc("POST "+t+"/relationships/{rid}/end", tenantItem("rid", s.EndRelationship))
	mux.HandleFunc("GET "+t+"/devicecodes", tenantGet(s.DeviceCodes))
	mux.HandleFunc("POST "+t+"/devicecodes/{code}/approve", s.adminApproveDeviceCode)
	mux.HandleFunc("POST "+t+"/devicecodes/{code}/decline", tenantItem("code", s.DeclineDeviceCode))
	mux.HandleFunc("POST "+t+"/devicecodes/{code}/slowdown", tenantItem("code", s.SlowDownDeviceCode))
}

// tenantGet answers fn(tenant ID) with 200.
func tenantGet[T any](fn func(string) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r.PathValue("tid"))
		adminReply(w, http.StatusOK, v, err)
	}
}

// tenantItem answers fn(tenant ID, path value name) with 200.
func tenantItem[T any](name string, fn func(string, string) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r.PathValue("tid"), r.PathValue(name))
		adminReply(w, http.StatusOK, v, err)
	}
}

// tenantPost decodes the JSON body and answers fn(tenant ID, body) with status.
func tenantPost[B, T any](status int, fn func(string, B) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b B
		if decodeBody(w, r, &b) {
			v, err := fn(r.PathValue("tid"), b)
			adminReply(w, status, v, err)
		}
	}
}

// adminApproveDeviceCode approves a user code; the body (DeviceApproval) is
// optional.
func (s *Server) adminApproveDeviceCode(w http.ResponseWriter, r *http.Request) {
	var a DeviceApproval
	body, err := readLimited(r.Body)
	if err != nil {
		adminError(w, err)
		return
	}
	if len(bytes.TrimSpace(body)) > 0 && !decodeRaw(w, body, &a) {
		return
	}
	v, err := s.ApproveDeviceCode(r.PathValue("tid"), r.PathValue("code"), a)
	adminReply(w, http.StatusOK, v, err)
}
