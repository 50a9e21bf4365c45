package graph_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
)

const (
	testTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	testToken  = "fake-access-token-Zm9vYmFy"
	testUserID = "5f0c3bb6-4c5e-4f3a-9d0b-2d2f2d6f0a11"
	pageSize   = 2
)

// fakeCredential hands out a fixed token and remembers what it was asked.
type fakeCredential struct {
	mu    sync.Mutex
	seen  []policy.TokenRequestOptions
	token string
	err   error
}

func (f *fakeCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, o)
	if f.err != nil {
		return azcore.AccessToken{}, f.err
	}
	return azcore.AccessToken{Token: f.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func (f *fakeCredential) requests() []policy.TokenRequestOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]policy.TokenRequestOptions(nil), f.seen...)
}

// seenRequest is what the fake Graph received.
type seenRequest struct {
	Method, Path, Select, SkipToken, Authorization string
}

// fakeGraph serves a Graph subset over TLS, paging collections pageSize items
// at a time with @odata.nextLink. fault, when set, answers instead.
type fakeGraph struct {
	srv   *httptest.Server
	mu    sync.Mutex
	seen  []seenRequest
	fault http.HandlerFunc

	subscriptions []map[string]any
	skus          []map[string]any
	users         map[string]map[string]any
}

func newFakeGraph(t *testing.T) *fakeGraph {
	t.Helper()
	f := &fakeGraph{subscriptions: wireSubscriptions(), skus: wireSkus(), users: map[string]map[string]any{testUserID: wireUser()}}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGraph) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.seen = append(f.seen, seenRequest{r.Method, r.URL.Path, q.Get("$select"), q.Get("$skiptoken"), r.Header.Get("Authorization")})
	fault := f.fault
	f.mu.Unlock()
	if fault != nil {
		fault(w, r)
		return
	}
	switch {
	case r.URL.Path == "/v1.0/directory/subscriptions":
		f.page(w, r, f.subscriptions)
	case r.URL.Path == "/v1.0/subscribedSkus":
		f.page(w, r, f.skus)
	case strings.HasPrefix(r.URL.Path, "/v1.0/users/"):
		u, ok := f.users[strings.TrimPrefix(r.URL.Path, "/v1.0/users/")]
		if !ok {
			writeJSON(w, http.StatusNotFound, graphError("Request_ResourceNotFound", "Resource does not exist."))
			return
		}
		writeJSON(w, http.StatusOK, u)
	default:
		writeJSON(w, http.StatusNotFound, graphError("BadRequest", "unknown path"))
	}
}

// page answers one page of items; $skiptoken is the offset.
func (f *fakeGraph) page(w http.ResponseWriter, r *http.Request, items []map[string]any) {
	from, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
	to := min(from+pageSize, len(items))
	body := map[string]any{"@odata.context": f.srv.URL + "/v1.0/$metadata#x", "value": items[from:to]}
	if to < len(items) {
		body["@odata.nextLink"] = f.srv.URL + r.URL.Path + "?$skiptoken=" + strconv.Itoa(to)
	}
	writeJSON(w, http.StatusOK, body)
}

func (f *fakeGraph) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

func (f *fakeGraph) setFault(h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = h
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func graphError(code, msg string) map[string]any {
	return map[string]any{"error": map[string]any{"code": code, "message": msg}}
}

var (
	created = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	renewal = time.Date(2027, 11, 20, 9, 30, 0, 0, time.UTC)
)

// wireSubscriptions are five companySubscriptions as Graph sends them.
func wireSubscriptions() []map[string]any {
	var out []map[string]any
	for i := range 5 {
		out = append(out, map[string]any{
			"id":                     fmt.Sprintf("sub-%d", i),
			"commerceSubscriptionId": fmt.Sprintf("commerce-%d", i),
			"skuId":                  fmt.Sprintf("639dec6b-bb19-468b-871c-c5c441c4b0c%d", i),
			"skuPartNumber":          fmt.Sprintf("SKU_%d", i),
			"status":                 []string{"Enabled", "Warning", "Suspended", "Deleted", "LockedOut"}[i],
			"totalLicenses":          10 + i,
			"isTrial":                i%2 == 1,
			"createdDateTime":        created.Add(time.Duration(i) * time.Hour).Format(time.RFC3339),
			"nextLifecycleDateTime":  renewal.Add(time.Duration(i) * time.Hour).Format(time.RFC3339),
			"ownerId":                fmt.Sprintf("owner-%d", i),
			"ownerTenantId":          testTenant,
			"ownerType":              "User",
			"serviceStatus":          []any{map[string]any{"servicePlanId": "113feb6c-3fe4-4440-bddc-54d774bf0318", "provisioningStatus": "Success"}},
		})
	}
	delete(out[4], "nextLifecycleDateTime") // absent field stays nil
	return out
}

func wantSubscriptions() []graph.Subscription {
	var out []graph.Subscription
	for i := range 5 {
		next := renewal.Add(time.Duration(i) * time.Hour)
		s := graph.Subscription{
			ID: fmt.Sprintf("sub-%d", i), CommerceSubscriptionID: fmt.Sprintf("commerce-%d", i),
			SkuID: fmt.Sprintf("639dec6b-bb19-468b-871c-c5c441c4b0c%d", i), SkuPartNumber: fmt.Sprintf("SKU_%d", i),
			Status:        []string{"Enabled", "Warning", "Suspended", "Deleted", "LockedOut"}[i],
			TotalLicenses: 10 + i, IsTrial: i%2 == 1, Created: created.Add(time.Duration(i) * time.Hour),
			NextLifecycle: &next, OwnerID: fmt.Sprintf("owner-%d", i), OwnerTenantID: testTenant, OwnerType: "User",
		}
		out = append(out, s)
	}
	out[4].NextLifecycle = nil
	return out
}

// wireSkus are five subscribedSkus (three pages) as Graph sends them.
func wireSkus() []map[string]any {
	var out []map[string]any
	for i := range 5 {
		out = append(out, map[string]any{
			"id":               fmt.Sprintf("%s_sku%d", testTenant, i),
			"skuId":            fmt.Sprintf("c42b9cae-ea4f-4ab7-9717-81576235cca%d", i),
			"skuPartNumber":    fmt.Sprintf("PART_%d", i),
			"accountId":        fmt.Sprintf("account-%d", i%2),
			"accountName":      fmt.Sprintf("Account %d", i%2),
			"appliesTo":        "User",
			"capabilityStatus": []string{"Enabled", "Warning", "Suspended", "Deleted", "LockedOut"}[i],
			"consumedUnits":    i * 3,
			"prepaidUnits":     map[string]any{"enabled": 100 + i, "suspended": i, "warning": 2 * i, "lockedOut": 3 * i},
			"subscriptionIds":  []string{fmt.Sprintf("sub-%d", i), fmt.Sprintf("sub-x%d", i)},
		})
	}
	return out
}

func wantSkus() []graph.SubscribedSku {
	var out []graph.SubscribedSku
	for i := range 5 {
		out = append(out, graph.SubscribedSku{
			SkuID: fmt.Sprintf("c42b9cae-ea4f-4ab7-9717-81576235cca%d", i), SkuPartNumber: fmt.Sprintf("PART_%d", i),
			AccountID: fmt.Sprintf("account-%d", i%2), AccountName: fmt.Sprintf("Account %d", i%2),
			Enabled: 100 + i, Suspended: i, Warning: 2 * i, LockedOut: 3 * i, Consumed: i * 3,
			SubscriptionIDs:  []string{fmt.Sprintf("sub-%d", i), fmt.Sprintf("sub-x%d", i)},
			CapabilityStatus: []string{"Enabled", "Warning", "Suspended", "Deleted", "LockedOut"}[i], AppliesTo: "User",
		})
	}
	return out
}

const (
	copilotSku = "639dec6b-bb19-468b-871c-c5c441c4b0cb"
	e5Sku      = "06ebc4ee-1bb5-47dd-8120-11324bc54e06"
	groupID    = "a7b8c9d0-1111-2222-3333-444455556666"
)

func wireUser() map[string]any {
	return map[string]any{
		"id":                testUserID,
		"userPrincipalName": "adele@contoso.example",
		"assignedLicenses":  []any{map[string]any{"skuId": copilotSku, "disabledPlans": []string{}}, map[string]any{"skuId": e5Sku, "disabledPlans": []string{}}},
		"licenseAssignmentStates": []any{
			map[string]any{"skuId": copilotSku, "assignedByGroup": nil, "state": "Active", "error": "None", "disabledPlans": []string{}},
			map[string]any{"skuId": e5Sku, "assignedByGroup": groupID, "state": "Error", "error": "CountViolation", "disabledPlans": []string{}},
		},
	}
}

// fixedNow is the clock of every test client.
var fixedNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newClient(t *testing.T, f *fakeGraph, timeout time.Duration) *graph.Client {
	t.Helper()
	now := func() time.Time { return fixedNow }
	c, err := graph.New(graph.Options{
		Endpoint:   f.srv.URL,
		HTTPClient: f.srv.Client(),
		Gate:       m365.NewGate(now),
		Timeout:    timeout,
		Now:        now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// checkAuth asserts that every request carried the token, and that the
// credential was asked for Graph's scope in the test tenant.
func checkAuth(t *testing.T, cred *fakeCredential, seen []seenRequest) {
	t.Helper()
	for _, r := range seen {
		if r.Authorization != "Bearer "+testToken {
			t.Errorf("%s %s?$skiptoken=%s: Authorization = %q, want the credential's bearer token", r.Method, r.Path, r.SkipToken, r.Authorization)
		}
	}
	reqs := cred.requests()
	if len(reqs) == 0 {
		t.Fatal("credential was never asked for a token")
	}
	for _, o := range reqs {
		if diff := cmp.Diff([]string{m365.GraphScope}, o.Scopes); diff != "" {
			t.Errorf("token scopes (-want +got):\n%s", diff)
		}
		if o.TenantID != testTenant {
			t.Errorf("token request TenantID = %q, want %q", o.TenantID, testTenant)
		}
	}
}

func TestListSubscriptionsReadsAllPages(t *testing.T) {
	f := newFakeGraph(t)
	cred := &fakeCredential{token: testToken}
	got, _, err := newClient(t, f, 0).For(testTenant, cred).ListSubscriptions(context.Background())
	if err != nil {
		t.Fatalf("ListSubscriptions: %v", err)
	}
	if diff := cmp.Diff(wantSubscriptions(), got); diff != "" {
		t.Errorf("subscriptions (-want +got):\n%s", diff)
	}
	seen := f.requests()
	wantSeen := []seenRequest{
		{Method: "GET", Path: "/v1.0/directory/subscriptions"},
		{Method: "GET", Path: "/v1.0/directory/subscriptions", SkipToken: "2"},
		{Method: "GET", Path: "/v1.0/directory/subscriptions", SkipToken: "4"},
	}
	if diff := cmp.Diff(wantSeen, seen, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Authorization" }, cmp.Ignore())); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	checkAuth(t, cred, seen)
}

func TestListSubscribedSkusReadsAllPagesWithSelect(t *testing.T) {
	f := newFakeGraph(t)
	cred := &fakeCredential{token: testToken}
	got, _, err := newClient(t, f, 0).For(testTenant, cred).ListSubscribedSkus(context.Background())
	if err != nil {
		t.Fatalf("ListSubscribedSkus: %v", err)
	}
	if diff := cmp.Diff(wantSkus(), got); diff != "" {
		t.Errorf("subscribed SKUs (-want +got):\n%s", diff)
	}
	const sel = "skuId,skuPartNumber,prepaidUnits,consumedUnits,subscriptionIds,accountId,accountName,appliesTo,capabilityStatus"
	seen := f.requests()
	wantSeen := []seenRequest{
		{Method: "GET", Path: "/v1.0/subscribedSkus", Select: sel},
		{Method: "GET", Path: "/v1.0/subscribedSkus", SkipToken: "2"},
		{Method: "GET", Path: "/v1.0/subscribedSkus", SkipToken: "4"},
	}
	if diff := cmp.Diff(wantSeen, seen, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Authorization" }, cmp.Ignore())); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	checkAuth(t, cred, seen)
}

func TestGetUserReadsLicences(t *testing.T) {
	f := newFakeGraph(t)
	cred := &fakeCredential{token: testToken}
	got, err := newClient(t, f, 0).For(testTenant, cred).GetUser(context.Background(), testUserID)
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	want := graph.User{
		ID: testUserID, UserPrincipalName: "adele@contoso.example",
		AssignedSkuIDs: []string{copilotSku, e5Sku},
		LicenseStates: []graph.LicenseState{
			{SkuID: copilotSku, State: "Active"},
			{SkuID: e5Sku, AssignedByGroup: groupID, State: "Error"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("user (-want +got):\n%s", diff)
	}
	seen := f.requests()
	wantSeen := []seenRequest{{Method: "GET", Path: "/v1.0/users/" + testUserID, Select: "id,userPrincipalName,assignedLicenses,licenseAssignmentStates"}}
	if diff := cmp.Diff(wantSeen, seen, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Authorization" }, cmp.Ignore())); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	checkAuth(t, cred, seen)
}

// call runs one of the three calls and returns its error.
type call func(ctx context.Context, c *graph.Client, cred azcore.TokenCredential) error

var (
	listSubscriptions call = func(ctx context.Context, c *graph.Client, cred azcore.TokenCredential) error {
		_, _, err := c.For(testTenant, cred).ListSubscriptions(ctx)
		return err
	}
	listSkus call = func(ctx context.Context, c *graph.Client, cred azcore.TokenCredential) error {
		_, _, err := c.For(testTenant, cred).ListSubscribedSkus(ctx)
		return err
	}
	getUser = func(id string) call {
		return func(ctx context.Context, c *graph.Client, cred azcore.TokenCredential) error {
			_, err := c.For(testTenant, cred).GetUser(ctx, id)
			return err
		}
	}
)

// answer returns a fault handler that answers status with headers and body.
func answer(status int, headers map[string]string, body any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		writeJSON(w, status, body)
	}
}

// dropConnection closes the connection without answering.
func dropConnection(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// failure is the part of an *m365.Error a test compares.
type failure struct {
	Kind       m365.Kind
	Op         string
	StatusCode int
	Code       string
	Reason     string
	RetryAfter time.Duration
}

func failureOf(t *testing.T, err error) failure {
	t.Helper()
	e, ok := m365.AsError(err)
	if !ok {
		t.Fatalf("error %v (%T) is not an *m365.Error", err, err)
	}
	return failure{e.Kind, e.Op, e.StatusCode, e.Code, e.Reason, e.RetryAfter}
}

func TestErrorsAreTypedAndNeverRetried(t *testing.T) {
	cases := map[string]struct {
		reason string
		fault  http.HandlerFunc
		call   call
		want   failure
		// wantSent is how many requests reached the server, retries included.
		wantSent int
	}{
		"403 keeps Graph's code and message": {
			reason:   "a missing Organization.Read.All must reach the user verbatim",
			fault:    answer(http.StatusForbidden, nil, graphError("Authorization_RequestDenied", "Insufficient privileges to complete the operation.")),
			call:     listSubscriptions,
			want:     failure{Kind: m365.Forbidden, Op: graph.OpListSubscriptions, StatusCode: 403, Code: "Authorization_RequestDenied", Reason: "Insufficient privileges to complete the operation."},
			wantSent: 1,
		},
		"401 is Unauthorized": {
			reason:   "an expired or foreign token needs a person",
			fault:    answer(http.StatusUnauthorized, nil, graphError("InvalidAuthenticationToken", "Access token validation failure.")),
			call:     listSkus,
			want:     failure{Kind: m365.Unauthorized, Op: graph.OpListSubscribedSkus, StatusCode: 401, Code: "InvalidAuthenticationToken", Reason: "Access token validation failure."},
			wantSent: 1,
		},
		"503 without Retry-After is Transient and not retried": {
			reason:   "the SDK's retry handler must be gone: backoff belongs to the reconciler",
			fault:    answer(http.StatusServiceUnavailable, nil, graphError("serviceNotAvailable", "Service unavailable")),
			call:     listSkus,
			want:     failure{Kind: m365.Transient, Op: graph.OpListSubscribedSkus, StatusCode: 503, Code: "serviceNotAvailable", Reason: "Service unavailable"},
			wantSent: 1,
		},
		"500 with a non-JSON body is Transient": {
			reason: "a proxy's HTML error page must not hide the status",
			fault: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte("<html>oops</html>"))
			},
			call:     getUser(testUserID),
			want:     failure{Kind: m365.Transient, Op: graph.OpGetUser, StatusCode: 500, Reason: "non-JSON answer (content-type text/html, 17 bytes)"},
			wantSent: 1,
		},
		"dropped connection is Transient": {
			reason: "resets and EOFs are retried by the reconciler with backoff",
			fault:  dropConnection,
			call:   listSubscriptions,
			want:   failure{Kind: m365.Transient, Op: graph.OpListSubscriptions, Reason: "connection failed"},
			// net/http may resend an idempotent request once on a dropped
			// reused connection; the count is not compared for this case.
			wantSent: -1,
		},
		"failure on a later page fails the listing": {
			reason: "a partial list would make subscriptions look cancelled",
			fault: func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("$skiptoken") == "" {
					writeJSON(w, 200, map[string]any{"value": []any{}, "@odata.nextLink": "https://" + r.Host + r.URL.Path + "?$skiptoken=2"})
					return
				}
				writeJSON(w, http.StatusForbidden, graphError("Authorization_RequestDenied", "denied"))
			},
			call:     listSubscriptions,
			want:     failure{Kind: m365.Forbidden, Op: graph.OpListSubscriptions, StatusCode: 403, Code: "Authorization_RequestDenied", Reason: "denied"},
			wantSent: 2,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFakeGraph(t)
			f.setFault(tc.fault)
			err := tc.call(context.Background(), newClient(t, f, 0), &fakeCredential{token: testToken})
			if diff := cmp.Diff(tc.want, failureOf(t, err)); diff != "" {
				t.Errorf("%s: error (-want +got):\n%s", tc.reason, diff)
			}
			if n := len(f.requests()); tc.wantSent >= 0 && n != tc.wantSent {
				t.Errorf("%s: server saw %d requests, want %d", tc.reason, n, tc.wantSent)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error message leaks the token: %v", err)
			}
		})
	}
}

func TestUnknownUserIsNotFound(t *testing.T) {
	f := newFakeGraph(t)
	_, err := newClient(t, f, 0).For(testTenant, &fakeCredential{token: testToken}).GetUser(context.Background(), "no-such-user")
	want := failure{Kind: m365.NotFound, Op: graph.OpGetUser, StatusCode: 404, Code: "Request_ResourceNotFound", Reason: "Resource does not exist."}
	if diff := cmp.Diff(want, failureOf(t, err)); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}

// TestThrottleHoldsLaterCalls proves that a 429 comes back at once with its
// Retry-After (kiota's retry handler would have retried it) and that the next
// call for the tenant does not reach Graph before the wait has passed.
func TestThrottleHoldsLaterCalls(t *testing.T) {
	f := newFakeGraph(t)
	f.setFault(answer(http.StatusTooManyRequests, map[string]string{"Retry-After": "7"}, graphError("TooManyRequests", "Too many requests")))
	c := newClient(t, f, 0)
	cred := &fakeCredential{token: testToken}

	err := listSubscriptions(context.Background(), c, cred)
	want := failure{Kind: m365.Throttled, Op: graph.OpListSubscriptions, StatusCode: 429, Code: "TooManyRequests", Reason: "Too many requests", RetryAfter: 7 * time.Second}
	if diff := cmp.Diff(want, failureOf(t, err)); diff != "" {
		t.Errorf("first call (-want +got):\n%s", diff)
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("server saw %d requests for the throttled call, want 1 (no SDK retries)", n)
	}

	err = getUser(testUserID)(context.Background(), c, cred)
	if got := failureOf(t, err); got.Kind != m365.Throttled || got.RetryAfter != 7*time.Second || got.Op != graph.OpGetUser {
		t.Errorf("second call: got %+v, want Throttled for 7s from %q", got, graph.OpGetUser)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("server saw %d requests, want 1: the gate must hold the second call", n)
	}
}

func TestTokenFailures(t *testing.T) {
	denied := &m365.Error{Op: "acquire token", Kind: m365.Unauthorized, StatusCode: 401, Code: "invalid_client", Reason: "AADSTS7000215: Invalid client secret provided."}
	cases := map[string]struct {
		reason string
		err    error
		want   failure
	}{
		"typed token error passes through": {
			reason: "the credentials package already said what went wrong",
			err:    denied,
			want:   failure{Kind: m365.Unauthorized, Op: "acquire token", StatusCode: 401, Code: "invalid_client", Reason: "AADSTS7000215: Invalid client secret provided."},
		},
		"other token error is Unauthorized": {
			reason: "a credential that cannot produce a token needs a person",
			err:    errors.New("certificate has expired"),
			want:   failure{Kind: m365.Unauthorized, Op: graph.OpGetUser, Reason: "token request failed"},
		},
		"token timeout is Transient": {
			reason: "a slow token endpoint is retried, not reported as a bad credential",
			err:    fmt.Errorf("token endpoint: %w", context.DeadlineExceeded),
			want:   failure{Kind: m365.Transient, Op: graph.OpGetUser, Reason: "timed out"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFakeGraph(t)
			err := getUser(testUserID)(context.Background(), newClient(t, f, 0), &fakeCredential{err: tc.err})
			if diff := cmp.Diff(tc.want, failureOf(t, err)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.reason, diff)
			}
			if n := len(f.requests()); n != 0 {
				t.Errorf("server saw %d requests without a token, want 0", n)
			}
		})
	}
}

func TestCallTimeoutIsTransient(t *testing.T) {
	f := newFakeGraph(t)
	f.setFault(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	err := listSkus(context.Background(), newClient(t, f, 100*time.Millisecond), &fakeCredential{token: testToken})
	want := failure{Kind: m365.Transient, Op: graph.OpListSubscribedSkus, Reason: "timed out"}
	if diff := cmp.Diff(want, failureOf(t, err)); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}

func TestEndlessPagingStops(t *testing.T) {
	f := newFakeGraph(t)
	f.setFault(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"value": []any{}, "@odata.nextLink": "https://" + r.Host + r.URL.Path + "?$skiptoken=same"})
	})
	err := listSubscriptions(context.Background(), newClient(t, f, 0), &fakeCredential{token: testToken})
	if got := failureOf(t, err); got.Kind != m365.InvalidResponse {
		t.Errorf("error kind = %s, want InvalidResponse", got.Kind)
	}
	if n := len(f.requests()); n != 2 {
		t.Errorf("server saw %d requests, want 2 (first page, then the repeated link once)", n)
	}
}

func TestNewRejectsNonHTTPSEndpoint(t *testing.T) {
	cases := map[string]struct {
		endpoint string
		wantErr  bool
	}{
		"default is public Graph": {endpoint: "", wantErr: false},
		"https origin":            {endpoint: "https://127.0.0.1:8443", wantErr: false},
		"trailing slash":          {endpoint: "https://graph.microsoft.com/", wantErr: false},
		"plain http":              {endpoint: "http://127.0.0.1:8080", wantErr: true},
		"with a path":             {endpoint: "https://graph.microsoft.com/v1.0", wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := graph.New(graph.Options{Endpoint: tc.endpoint})
			if (err != nil) != tc.wantErr {
				t.Errorf("New(%q) error = %v, wantErr %v", tc.endpoint, err, tc.wantErr)
			}
		})
	}
}

// TestConcurrentCalls runs calls for many tenants at once; under -race it
// proves that per-call pipelines share no mutable state.
func TestConcurrentCalls(t *testing.T) {
	f := newFakeGraph(t)
	c := newClient(t, f, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			tenant := fmt.Sprintf("tenant-%d", i%4)
			cred := &fakeCredential{token: testToken}
			if i%2 == 0 {
				got, _, err := c.For(tenant, cred).ListSubscriptions(context.Background())
				if err == nil && len(got) != 5 {
					err = fmt.Errorf("%s: %d subscriptions, want 5", tenant, len(got))
				}
				errs <- err
				return
			}
			_, err := c.For(tenant, cred).GetUser(context.Background(), testUserID)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
