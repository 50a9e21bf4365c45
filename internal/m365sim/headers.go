package m365sim

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Diagnostic headers Microsoft's services send on every answer, errors
// included: Graph request-id and client-request-id (the client's, or the
// request-id), the licensing API's x-ms-correlation-id (the client's, or a
// new one), Entra's x-ms-request-id and, when asked with
// return-client-request-id, client-request-id.
const (
	headerRequestID       = "request-id"
	headerClientRequestID = "client-request-id"
	headerEntraRequestID  = "x-ms-request-id"
	headerAGSDiagnostic   = "x-ms-ags-diagnostic"
	agsDiagnostic         = `{"ServerInfo":{"DataCenter":"m365sim","Slice":"E","Ring":"1","ScaleUnit":"000","RoleInstance":"SIM000001"}}`
)

// stampHeaders sets the diagnostic headers of ep's answers.
func (s *Server) stampHeaders(w http.ResponseWriter, r *http.Request, ep string) {
	h := w.Header()
	switch ep {
	case EndpointGraph:
		id := uuid.NewString()
		h.Set(headerRequestID, id)
		h.Set(headerClientRequestID, firstNonEmpty(r.Header.Get(headerClientRequestID), id))
		h.Set(headerAGSDiagnostic, agsDiagnostic)
	case EndpointLicensing:
		h.Set(correlationHeader, firstNonEmpty(r.Header.Get(correlationHeader), uuid.NewString()))
	case EndpointAuthority:
		h.Set(headerEntraRequestID, uuid.NewString())
		if id := r.Header.Get(headerClientRequestID); id != "" && strings.EqualFold(r.Header.Get("return-client-request-id"), "true") {
			h.Set(headerClientRequestID, id)
		}
	}
}

// graphInnerError is Graph's error.innerError, naming the answer's ids.
func graphInnerError(w http.ResponseWriter) map[string]any {
	h := w.Header()
	return map[string]any{"date": time.Now().UTC().Format("2006-01-02T15:04:05"),
		"request-id": h.Get(headerRequestID), "client-request-id": h.Get(headerClientRequestID)}
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
