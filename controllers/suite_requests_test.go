package controllers_test

import (
	"net/http"
	"net/url"
	"sync"
)

// requestLog records the requests a client sends (method, path and query),
// as the API server receives them: wrap a rest.Config's transport with it.
type requestLog struct {
	mu   sync.Mutex
	reqs []apiRequest
}

// apiRequest is one request sent to the API server.
type apiRequest struct {
	Method, Path string
	Query        url.Values
}

func (l *requestLog) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		l.mu.Lock()
		l.reqs = append(l.reqs, apiRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()})
		l.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

// mark returns a position in the log, for since.
func (l *requestLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reqs)
}

// since returns the requests after mark that match.
func (l *requestLog) since(mark int, match func(apiRequest) bool) []apiRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []apiRequest
	for _, r := range l.reqs[mark:] {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
