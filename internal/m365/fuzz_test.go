package m365

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// FuzzParseRetryAfter: whatever the header says and whatever the clock, a
// wait is within [MinRetryAfter, MaxRetryAfter], and the reconciler's clamp
// within [MinRetryAfter, min(limit, MaxRetryAfter)]; nothing panics.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "30", "3600", "3601", "100000000", "9223372037", "99999999999999999999999999",
		"Wed, 25 Nov 2026 12:01:30 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT",
		"Wednesday, 25-Nov-26 12:00:00 GMT", "Wed Nov 25 12:00:00 2026", "-1", "1.5", " 7 ", ""} {
		f.Add(s, t0.Unix(), int64(15*time.Minute))
	}
	f.Fuzz(func(t *testing.T, header string, nowUnix, limit int64) {
		now := time.Unix(nowUnix, 0)
		d, ok := ParseRetryAfter(header, now)
		if ok && (d < MinRetryAfter || d > MaxRetryAfter) {
			t.Fatalf("ParseRetryAfter(%q) = %v, outside [%v, %v]", header, d, MinRetryAfter, MaxRetryAfter)
		}
		if !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v without ok", header, d)
		}
		upper := MaxRetryAfter
		if l := time.Duration(limit); l > 0 && l < upper {
			upper = max(l, MinRetryAfter)
		}
		if c := ClampRetryAfter(d, time.Duration(limit)); c < MinRetryAfter || c > upper {
			t.Fatalf("ClampRetryAfter(%v, %v) = %v, outside [%v, %v]", d, time.Duration(limit), c, MinRetryAfter, upper)
		}
		resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {header}}}
		if w, _ := throttleWait(resp, now); w < MinRetryAfter || w > MaxRetryAfter {
			t.Fatalf("a 429 with Retry-After %q waits %v", header, w)
		}
	})
}

// FuzzErrorBody: whatever an error answer holds (Microsoft's three shapes, a
// proxy page, bytes), the error never panics, never contains the request's
// bearer token or a known secret, and its code and reason are bounded,
// printable, one line.
func FuzzErrorBody(f *testing.F) {
	seeds := []struct{ body, contentType string }{
		{`{"errorCode":"BadRequest","reason":"Invalid scope."}`, "application/json"},
		{`{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges"}}`, "application/json"},
		{`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`, "application/json"},
		{echoPage(), "text/html; charset=utf-8"},
		{`{"errorCode":"x","reason":"Bearer ` + plantedToken + `"}`, "application/json"},
		{`{"error":{"code":"` + plantedSecret + `","message":"\u0000\r\n` + plantedSecret + `"}}`, ""},
		{`{"error":"x","error_description":"client_secret=` + plantedSecret + `&refresh_token=abc"}`, "application/json"},
		{"\xff\xfe<html>", "text/html"},
	}
	for _, s := range seeds {
		f.Add([]byte(s.body), s.contentType, 400)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string, status int) {
		if status < 300 || status > 599 {
			status = 400 + (status%100+100)%100
		}
		resp := &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {contentType}}, Request: leakRequest()}
		e := FromResponse("op", resp, body, t0, plantedSecret)
		msg := e.Error()
		if strings.Contains(msg, plantedToken) || strings.Contains(msg, plantedSecret) {
			t.Fatalf("the error leaks a planted secret: %q", msg)
		}
		if utf8.RuneCountInString(e.Reason) > MaxReasonLength || len(e.Code) > MaxCodeLength {
			t.Fatalf("unbounded: code %d bytes, reason %d runes", len(e.Code), utf8.RuneCountInString(e.Reason))
		}
		for _, s := range []string{e.Code, e.Reason} {
			if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0 {
				t.Fatalf("not printable text: %q", s)
			}
		}
	})
}
