package m365

// What an error copies from a Microsoft answer: only a parsed error code and
// message, cleaned, stripped of secrets and bounded. A proxy's HTML page
// (which may echo the request's headers or form) is described, never quoted.

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of what an error copies from an answer.
const (
	// MaxCodeLength bounds Error.Code (bytes; a code is ASCII).
	MaxCodeLength = 64
	// MaxReasonLength bounds Error.Reason (runes).
	MaxReasonLength = 300
)

// Redacted replaces a secret found in text copied from an answer.
const Redacted = "[REDACTED]"

// DescribeErrorBody returns the error code and message of an error answer:
// licensing's {"errorCode","reason"}, Graph's {"error":{"code","message"}}
// and Entra's {"error","error_description"} (whose description keeps its
// AADSTS code). The message becomes one line of printable text without any
// string of secrets (as sent, query- or path-escaped), bearer tokens, JWTs
// or credential form fields, at most MaxReasonLength runes; a code that is
// not made of [A-Za-z0-9_.:-] is dropped. A body that holds none of these is
// described as "non-JSON answer (content-type X, N bytes)", never quoted. An
// empty body gives "", "".
func DescribeErrorBody(body []byte, contentType string, secrets ...string) (code, reason string) {
	if len(body) == 0 {
		return "", ""
	}
	code, msg, ok := parseErrorBody(body)
	if !ok {
		return "", describeOpaque(body, contentType)
	}
	return CleanError(code, msg, secrets...)
}

// CleanError bounds and cleans an error code and message taken from an
// answer (as DescribeErrorBody does), for callers that got them parsed, e.g.
// from an SDK's error type.
func CleanError(code, msg string, secrets ...string) (string, string) {
	return cleanCode(code, secrets), CleanText(msg, MaxReasonLength, secrets...)
}

// parseErrorBody reads the three error shapes; ok is false when body is not
// a JSON object or holds none of them.
func parseErrorBody(body []byte) (code, msg string, ok bool) {
	var v struct {
		ErrorCode        string          `json:"errorCode"`
		Reason           string          `json:"reason"`
		Message          string          `json:"message"`
		Error            json.RawMessage `json:"error"`
		ErrorDescription string          `json:"error_description"`
	}
	if json.Unmarshal(body, &v) != nil {
		return "", "", false
	}
	code, msg = v.ErrorCode, v.Reason
	if msg == "" {
		msg = v.Message
	}
	if len(v.Error) > 0 {
		var s string
		var obj struct{ Code, Message string }
		if json.Unmarshal(v.Error, &s) == nil {
			code, msg = s, v.ErrorDescription
		} else if json.Unmarshal(v.Error, &obj) == nil {
			code, msg = obj.Code, obj.Message
		}
	}
	return code, msg, code != "" || msg != ""
}

// describeOpaque says what kind of answer body is without quoting it.
func describeOpaque(body []byte, contentType string) string {
	what := "non-JSON answer"
	if json.Valid(body) {
		what = "JSON answer without a Microsoft error"
	}
	return fmt.Sprintf("%s (content-type %s, %d bytes)", what, mediaType(contentType), len(body))
}

// mediaType is the type/subtype of a Content-Type header, "none" when absent
// and "unreadable" when it is not one.
func mediaType(ct string) string {
	if strings.TrimSpace(ct) == "" {
		return "none"
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || len(mt) > 64 {
		return "unreadable"
	}
	return mt
}

// cleanCode returns code when it looks like an error code and holds no secret.
func cleanCode(code string, secrets []string) string {
	if len(code) > MaxCodeLength || redact(code, secrets) != code {
		return ""
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.:-", c) >= 0) {
			return ""
		}
	}
	return code
}

// CleanText makes s safe to show in a condition, an Event or a log line: one
// line of printable text (control, format and line-separator characters
// become spaces, invalid UTF-8 becomes U+FFFD), without any of secrets, bearer
// tokens, JWTs or credential form fields, at most max runes (cut with "…").
// Characters are replaced one for one before secrets are removed, so no
// secret can be assembled from the pieces.
func CleanText(s string, max int, secrets ...string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	s, _ = Truncate(strings.TrimSpace(redact(s, secrets)), max)
	return s
}

// Patterns of credentials whatever their value: an Authorization header's
// bearer token, a JWT, and the form fields that carry a credential to Entra.
var (
	bearerPattern = regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*`)
	jwtPattern    = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*`)
	formPattern   = regexp.MustCompile(`(?i)\b(client_secret|client_assertion|refresh_token|access_token|id_token|assertion|password|device_code|code)=[^&\s"'<]+`)
)

// redact removes every secret (as sent, query- and path-escaped) and every
// credential-shaped string from s. Should a secret survive a few passes (it
// overlaps Redacted), the whole text is replaced.
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if v == "" {
			continue
		}
		for _, form := range []string{v, url.QueryEscape(v), url.PathEscape(v)} {
			for i := 0; i < 3 && strings.Contains(s, form); i++ {
				s = strings.ReplaceAll(s, form, Redacted)
			}
			if strings.Contains(s, form) {
				return Redacted
			}
		}
	}
	// A pattern runs only on text that could hold its match: most text here
	// (every product name, every sync) holds none, and the case-insensitive
	// patterns otherwise cost the controller about 7% of its CPU in a resync.
	if strings.Contains(strings.ToLower(s), "bearer") {
		s = bearerPattern.ReplaceAllString(s, "Bearer "+Redacted)
	}
	s = jwtPattern.ReplaceAllString(s, Redacted) // a literal prefix: already a substring search
	if strings.Contains(s, "=") {
		s = formPattern.ReplaceAllString(s, "${1}="+Redacted)
	}
	return s
}

// Truncate cuts s to at most max runes, the last one "…" when it was cut,
// and tells whether it cut. max <= 0 gives "".
func Truncate(s string, max int) (string, bool) {
	if utf8.RuneCountInString(s) <= max {
		return s, false
	}
	if max <= 0 {
		return "", true
	}
	n := 0
	for i := range s {
		if n == max-1 {
			return s[:i] + "…", true
		}
		n++
	}
	return s, false
}
