package m365sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Answer faults: Fault.Answer names how a served answer goes wrong. The
// rewriting ones take the real 2xx JSON answer of a GET and change it; they
// work on Graph pages ("value", "@odata.nextLink") and licensing lists
// ("items") alike.
const (
	// AnswerEmptyPage: 200 {"value":[]} (or {"items":[]}), no nextLink.
	AnswerEmptyPage = "emptyPage"
	// AnswerShortPage drops the item ItemID, or the last N items (default 1).
	AnswerShortPage = "shortPage"
	// AnswerNullItems inserts N nulls (default 1; the first at index 0).
	AnswerNullItems = "nullItems"
	// AnswerDuplicateItems repeats N items (default 1): a page with a
	// nextLink makes the next page start N items earlier (duplicates across
	// pages); a last or only page gets its first N items appended again.
	AnswerDuplicateItems = "duplicateItems"
	// AnswerManyItems appends N synthetic items (default 300) cloned from the
	// first, with new IDs ("SIMX00000001"... in licensing). They exist only
	// in the answer: a PUT to one answers 404.
	AnswerManyItems = "manyItems"
	// AnswerLongName makes the name (Fields[0], default productName in
	// licensing and skuPartNumber in Graph) of ItemID, or of the first item,
	// N characters long (default 300).
	AnswerLongName = "longName"
	// AnswerMissingFields removes Fields from every item (or the entity).
	AnswerMissingFields = "missingFields"
	// AnswerNextLinkLoop sets @odata.nextLink to the request's own URL.
	AnswerNextLinkLoop = "nextLinkLoop"
	// AnswerCrossOriginNextLink moves @odata.nextLink to Location (default
	// the leak sink), keeping its path and query.
	AnswerCrossOriginNextLink = "crossOriginNextLink"
	// AnswerOversize pads the JSON answer to N bytes (default 10 MiB).
	AnswerOversize = "oversize"

	// AnswerNotApplied: a licensing PUT answers 200 with the requested value
	// but nothing changes.
	AnswerNotApplied = "notApplied"
	// AnswerNotAppliedOld: a licensing PUT answers 200 with the old value and
	// nothing changes.
	AnswerNotAppliedOld = "notAppliedOld"
	// AnswerStaleReads: a licensing PUT is applied, but reads of that product
	// (list and GET) show the old value for StaleFor (eventual consistency).
	AnswerStaleReads = "staleReads"

	// AnswerProxyHTML: with Status, a proxy's HTML error page (text/html).
	AnswerProxyHTML = "proxyHTML"
	// AnswerEchoHeaders: with Status, a proxy's HTML page that echoes every
	// request header, Authorization included.
	AnswerEchoHeaders = "echoHeaders"
)

// Defaults of Fault.N per answer.
const (
	DefaultManyItems    = 300
	DefaultLongName     = 300
	DefaultOversizeBody = 10 << 20
)

const nextLinkKey = "@odata.nextLink"

var (
	rewriteAnswers = []string{AnswerEmptyPage, AnswerShortPage, AnswerNullItems, AnswerDuplicateItems, AnswerManyItems,
		AnswerLongName, AnswerMissingFields, AnswerNextLinkLoop, AnswerCrossOriginNextLink, AnswerOversize}
	putAnswers   = []string{AnswerNotApplied, AnswerNotAppliedOld, AnswerStaleReads}
	proxyAnswers = []string{AnswerProxyHTML, AnswerEchoHeaders}
)

// validateAnswer checks a fault's Answer against its other fields.
func validateAnswer(f Fault) error {
	switch {
	case f.Answer == "":
		return nil
	case slices.Contains(rewriteAnswers, f.Answer):
		if f.Status != 0 {
			return fmt.Errorf("%w: answer %s rewrites a served answer; it takes no status", ErrInvalid, f.Answer)
		}
		if f.Answer == AnswerMissingFields && len(f.Fields) == 0 {
			return fmt.Errorf("%w: answer %s needs fields", ErrInvalid, f.Answer)
		}
	case slices.Contains(putAnswers, f.Answer):
		if f.Endpoint != EndpointLicensing || f.Status != 0 {
			return fmt.Errorf("%w: answer %s applies to licensing PUTs and takes no status", ErrInvalid, f.Answer)
		}
		if f.Answer == AnswerStaleReads && f.StaleFor <= 0 {
			return fmt.Errorf("%w: answer %s needs staleFor", ErrInvalid, f.Answer)
		}
	case slices.Contains(proxyAnswers, f.Answer):
		if f.Status < 400 {
			return fmt.Errorf("%w: answer %s needs an error status", ErrInvalid, f.Answer)
		}
	default:
		return fmt.Errorf("%w: unknown answer %q", ErrInvalid, f.Answer)
	}
	return nil
}

// answerApplies reports whether a fault with this answer matches a request
// of method: rewrites touch GETs, PUT answers PUTs, the rest anything.
func answerApplies(answer, method string) bool {
	switch {
	case slices.Contains(rewriteAnswers, answer):
		return method == http.MethodGet
	case slices.Contains(putAnswers, answer):
		return method == http.MethodPut
	}
	return true
}

// bufferedWriter holds an answer so an answer fault can rewrite it.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// serveAnswer serves the request, through the call's rewriting answer fault
// if it has one.
func (s *Server) serveAnswer(rec *recorder, r *http.Request, c *call, serve func(*recorder, *http.Request)) {
	if c.fault == nil || !slices.Contains(rewriteAnswers, c.fault.Answer) {
		serve(rec, r)
		return
	}
	buf := &bufferedWriter{header: rec.Header()}
	serve(&recorder{ResponseWriter: buf}, r)
	body, status := buf.body.Bytes(), max(buf.status, http.StatusOK)
	if status/100 == 2 {
		body = s.rewrite(*c.fault, body, r)
		rec.Header().Del("Content-Length")
	}
	rec.WriteHeader(status)
	_, _ = rec.Write(body)
}

// rewrite applies a rewriting answer to a JSON answer body.
func (s *Server) rewrite(f Fault, body []byte, r *http.Request) []byte {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return body
	}
	key := collectionKey(doc)
	items, _ := doc[key].([]any)
	switch f.Answer {
	case AnswerEmptyPage:
		items = []any{}
		delete(doc, nextLinkKey)
	case AnswerShortPage:
		items = shortened(items, f.ItemID, orDefault(f.N, 1))
	case AnswerNullItems:
		items = withNulls(items, orDefault(f.N, 1))
	case AnswerDuplicateItems:
		items = duplicated(doc, items, r, orDefault(f.N, 1))
	case AnswerManyItems:
		items = withSynthetic(items, key, orDefault(f.N, DefaultManyItems))
	case AnswerLongName:
		lengthenName(items, f, key)
	case AnswerMissingFields:
		removeFields(doc, items, key, f.Fields)
	case AnswerNextLinkLoop:
		doc[nextLinkKey] = requestOrigin(r) + r.URL.RequestURI()
	case AnswerCrossOriginNextLink:
		doc[nextLinkKey] = s.foreignNextLink(doc, f, r)
	}
	if key != "" {
		doc[key] = items
	}
	out := encodeJSON(doc)
	if f.Answer == AnswerOversize {
		out = padded(doc, out, orDefault(f.N, DefaultOversizeBody))
	}
	return out
}

// collectionKey is "value" (Graph), "items" (licensing) or "" (one entity).
func collectionKey(doc map[string]any) string {
	for _, k := range []string{"value", "items"} {
		if _, ok := doc[k].([]any); ok {
			return k
		}
	}
	return ""
}

func orDefault(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

func encodeJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return b.Bytes()
}

// itemID is an item's key: "id" (Graph) or "productId" (licensing).
func itemID(it any) string {
	m, _ := it.(map[string]any)
	for _, k := range []string{"id", "productId"} {
		if v, ok := m[k].(string); ok {
			return v
		}
	}
	return ""
}

func shortened(items []any, id string, n int) []any {
	if id != "" {
		return slices.DeleteFunc(items, func(it any) bool { return strings.EqualFold(itemID(it), id) })
	}
	return items[:max(0, len(items)-n)]
}

func withNulls(items []any, n int) []any {
	out := append([]any{nil}, items...)
	for range n - 1 {
		out = append(out, nil)
	}
	return out
}

// duplicated repeats n items: across pages by moving the nextLink's skip
// token n items back, else within the page.
func duplicated(doc map[string]any, items []any, r *http.Request, n int) []any {
	if next, ok := doc[nextLinkKey].(string); ok {
		if moved, ok := skipBack(next, r, n); ok {
			doc[nextLinkKey] = moved
			return items
		}
	}
	return append(items, slices.Clone(items[:min(n, len(items))])...)
}

// skipBack moves a nextLink's $skiptoken n items back, never to or before the
// current page's start (that would be a loop, not a duplicate).
func skipBack(next string, r *http.Request, n int) (string, bool) {
	u, err := url.Parse(next)
	if err != nil {
		return "", false
	}
	q := u.Query()
	end, ok := decodeSkipToken(q.Get("$skiptoken"))
	if !ok {
		return "", false
	}
	start := 0
	if tok := r.URL.Query().Get("$skiptoken"); tok != "" {
		start, _ = decodeSkipToken(tok)
	}
	q.Set("$skiptoken", encodeSkipToken(max(start+1, end-n)))
	u.RawQuery = q.Encode()
	return u.String(), true
}

// withSynthetic appends n items cloned from the first one with new IDs.
func withSynthetic(items []any, key string, n int) []any {
	proto, _ := firstItem(items).(map[string]any)
	if proto == nil {
		proto = map[string]any{"policyId": PolicyID, "policyValue": PolicyEnabled}
	}
	for i := 1; i <= n; i++ {
		it := make(map[string]any, len(proto))
		for k, v := range proto {
			it[k] = v
		}
		if key == "items" {
			it["productId"], it["productName"] = fmt.Sprintf("SIMX%08d", i), fmt.Sprintf("Simulated product %d", i)
		} else {
			it["id"] = uuid.NewSHA1(uuid.NameSpaceOID, []byte("m365sim/many/"+strconv.Itoa(i))).String()
		}
		items = append(items, it)
	}
	return items
}

func firstItem(items []any) any {
	for _, it := range items {
		if it != nil {
			return it
		}
	}
	return nil
}

// lengthenName makes one item's name N characters long.
func lengthenName(items []any, f Fault, key string) {
	field := "skuPartNumber"
	if key == "items" {
		field = "productName"
	}
	if len(f.Fields) > 0 {
		field = f.Fields[0]
	}
	target := firstItem(items)
	if f.ItemID != "" {
		target = nil
		for _, it := range items {
			if strings.EqualFold(itemID(it), f.ItemID) {
				target = it
			}
		}
	}
	m, _ := target.(map[string]any)
	if m == nil {
		return
	}
	n := orDefault(f.N, DefaultLongName)
	name, _ := m[field].(string)
	long := name + strings.Repeat(" (extended name)", n/16+1)
	m[field] = long[:n]
}

func removeFields(doc map[string]any, items []any, key string, fields []string) {
	targets := items
	if key == "" {
		targets = []any{doc}
	}
	for _, it := range targets {
		if m, ok := it.(map[string]any); ok {
			for _, f := range fields {
				delete(m, f)
			}
		}
	}
}

// foreignNextLink is the page's nextLink (or the request itself) on the
// fault's Location origin (default the leak sink).
func (s *Server) foreignNextLink(doc map[string]any, f Fault, r *http.Request) string {
	uri := r.URL.RequestURI()
	if next, ok := doc[nextLinkKey].(string); ok {
		if u, err := url.Parse(next); err == nil {
			uri = u.RequestURI()
		}
	}
	loc := f.Location
	if loc == "" || loc == LocationSink {
		loc = "{sink}{requestURI}"
	}
	return s.expand(loc, hostOf(r), uri)
}

// padded grows the answer to size bytes with an "@sim.padding" property.
func padded(doc map[string]any, out []byte, size int) []byte {
	const overhead = len(`,"@sim.padding":""`)
	if pad := size - len(out) - overhead; pad > 0 {
		doc["@sim.padding"] = strings.Repeat("x", pad)
		return encodeJSON(doc)
	}
	return out
}

// writeProxyPage answers a proxy's HTML error page; AnswerEchoHeaders lists
// the request's headers in it, as some proxies' debug pages do.
func writeProxyPage(w http.ResponseWriter, r *http.Request, f Fault) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(f.Status)
	title := fmt.Sprintf("%d %s", f.Status, http.StatusText(f.Status))
	fmt.Fprintf(w, "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n", title, title)
	if f.Answer == AnswerEchoHeaders {
		fmt.Fprintf(w, "<pre>\r\n%s %s %s\r\n", r.Method, html.EscapeString(r.URL.RequestURI()), r.Proto)
		names := make([]string, 0, len(r.Header))
		for k := range r.Header {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			for _, v := range r.Header[k] {
				fmt.Fprintf(w, "%s: %s\r\n", k, html.EscapeString(v))
			}
		}
		fmt.Fprint(w, "</pre>\r\n")
	}
	fmt.Fprint(w, "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
}
