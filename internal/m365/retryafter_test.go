package m365

import (
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	cases := map[string]struct {
		in   string
		want time.Duration
		ok   bool
	}{
		"seconds":                         {"30", 30 * time.Second, true},
		"seconds with spaces":             {" 30 ", 30 * time.Second, true},
		"zero waits the floor":            {"0", MinRetryAfter, true},
		"one hour is kept":                {"3600", time.Hour, true},
		"beyond an hour is capped":        {"3601", MaxRetryAfter, true},
		"100000000 s is capped":           {"100000000", MaxRetryAfter, true},
		"near 9.2e9 s does not overflow":  {"9223372037", MaxRetryAfter, true},
		"max int64 does not overflow":     {"9223372036854775807", MaxRetryAfter, true},
		"beyond uint64 is capped":         {"99999999999999999999999999", MaxRetryAfter, true},
		"HTTP date in the future":         {t0.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		"HTTP date in the past":           {t0.Add(-time.Minute).Format(http.TimeFormat), MinRetryAfter, true},
		"HTTP date now":                   {t0.Format(http.TimeFormat), MinRetryAfter, true},
		"HTTP date in a year is capped":   {t0.AddDate(1, 0, 0).Format(http.TimeFormat), MaxRetryAfter, true},
		"HTTP date in year 9999":          {"Fri, 31 Dec 9999 23:59:59 GMT", MaxRetryAfter, true},
		"HTTP date in year 0001":          {"Mon, 01 Jan 0001 00:00:00 GMT", MinRetryAfter, true},
		"RFC 850 date":                    {t0.Add(2 * time.Minute).Format("Monday, 02-Jan-06 15:04:05 GMT"), 2 * time.Minute, true},
		"negative is invalid":             {"-1", 0, false},
		"plus sign is invalid":            {"+5", 0, false},
		"fraction is invalid":             {"1.5", 0, false},
		"garbage is invalid":              {"soon", 0, false},
		"empty is absent":                 {"", 0, false},
		"digits then garbage are invalid": {"10s", 0, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := ParseRetryAfter(tc.in, t0)
			if got != tc.want || ok != tc.ok {
				t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestClampRetryAfter(t *testing.T) {
	cases := map[string]struct {
		d, limit, want time.Duration
	}{
		"inside the bounds":                      {30 * time.Second, 15 * time.Minute, 30 * time.Second},
		"beyond the interval waits the interval": {2 * time.Hour, 15 * time.Minute, 15 * time.Minute},
		"beyond an hour with a long interval":    {3 * time.Hour, 24 * time.Hour, MaxRetryAfter},
		"no limit means an hour":                 {3 * time.Hour, 0, MaxRetryAfter},
		"negative limit means an hour":           {3 * time.Hour, -time.Second, MaxRetryAfter},
		"below the floor":                        {10 * time.Millisecond, time.Hour, MinRetryAfter},
		"zero":                                   {0, time.Hour, MinRetryAfter},
		"negative (an overflowed product)":       {math.MinInt64, time.Hour, MinRetryAfter},
		"max duration":                           {math.MaxInt64, 0, MaxRetryAfter},
		"limit below the floor keeps the floor":  {time.Minute, time.Millisecond, MinRetryAfter},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := ClampRetryAfter(tc.d, tc.limit); got != tc.want {
				t.Errorf("ClampRetryAfter(%v, %v) = %v, want %v", tc.d, tc.limit, got, tc.want)
			}
		})
	}
}

// TestRetryAfterIsBoundedEverywhere sends what a broken or hostile service
// could answer through the gate and the error mapping: whatever the header
// says, the caller is told to wait between MinRetryAfter and MaxRetryAfter,
// and the gate holds the tenant no longer than MaxRetryAfter.
func TestRetryAfterIsBoundedEverywhere(t *testing.T) {
	cases := map[string]struct {
		status int
		header string
		want   time.Duration
	}{
		"429 with 100000000 s":         {429, "100000000", MaxRetryAfter},
		"429 near the overflow":        {429, "9300000000", MaxRetryAfter},
		"503 with a date in year 9999": {503, "Fri, 31 Dec 9999 23:59:59 GMT", MaxRetryAfter},
		"429 with 0":                   {429, "0", MinRetryAfter},
		"429 with a date in the past":  {429, t0.Add(-time.Hour).Format(http.TimeFormat), MinRetryAfter},
		"503 with a date in a year":    {503, t0.AddDate(1, 0, 0).Format(http.TimeFormat), MaxRetryAfter},
		"429 without a usable header":  {429, "later", DefaultRetryAfter},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			now := t0
			g := NewGate(func() time.Time { return now })
			sent := 0
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				sent++
				h := http.Header{"Retry-After": {tc.header}}
				return &http.Response{StatusCode: tc.status, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
			})
			c := &http.Client{Transport: g.Transport("tenant", base)}
			resp, err := c.Get("https://licensing.example/v1.0/x")
			if err != nil {
				t.Fatalf("first request: %v", err)
			}
			_ = resp.Body.Close()
			if e := FromResponse("op", resp, nil, now); e.Kind != Throttled || e.RetryAfter != tc.want {
				t.Errorf("error: %s, wait %v; want Throttled for %v", e.Kind, e.RetryAfter, tc.want)
			}
			_, err = c.Get("https://licensing.example/v1.0/x")
			if KindOf(err) != Throttled || RetryAfterOf(err) != tc.want || sent != 1 {
				t.Errorf("right after: %v (wait %v), %d sent; want the gate to hold it for %v", err, RetryAfterOf(err), sent, tc.want)
			}
			now = now.Add(tc.want)
			if resp, err := c.Get("https://licensing.example/v1.0/x"); err != nil || sent != 2 {
				t.Errorf("after %v: %v, %d sent; want the request to leave", tc.want, err, sent)
			} else {
				_ = resp.Body.Close()
			}
		})
	}
}

// TestGateNeverStoresBeyondTheCap: a Defer longer than MaxRetryAfter (or one
// whose arithmetic overflowed) holds the tenant for at most MaxRetryAfter.
func TestGateNeverStoresBeyondTheCap(t *testing.T) {
	now := t0
	g := NewGate(func() time.Time { return now })
	g.Defer("t", "h", math.MaxInt64)
	if d := RetryAfterOf(g.Check("t", "h")); d != MaxRetryAfter {
		t.Errorf("after Defer(MaxInt64): the gate holds for %v, want %v", d, MaxRetryAfter)
	}
	now = now.Add(MaxRetryAfter)
	if err := g.Check("t", "h"); err != nil {
		t.Errorf("after the cap: %v, want no hold", err)
	}
}
