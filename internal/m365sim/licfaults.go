package m365sim

import (
	"net/http"
	"strings"
	"time"
)

// staleRead is a value reads keep showing after a write (eventual
// consistency, AnswerStaleReads).
type staleRead struct {
	value string
	until time.Time
}

// productWritable reports whether a PUT finds the product: it exists and, if
// Microsoft added it with a replication lag, the lag has passed.
func (s *Server) productWritable(t *tenant, id string) bool {
	key := strings.ToUpper(id)
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.productIdx[key]
	return ok && !s.now().Before(t.putReadyAt[key])
}

// putProduct applies a PUT of value v, as the call's answer fault (if any)
// says, and returns the item to answer.
func (s *Server) putProduct(r *http.Request, t *tenant, id, v string) policyItem {
	key := strings.ToUpper(id)
	now := s.now()
	var answer string
	var staleFor time.Duration
	if f := callOf(r).fault; f != nil {
		answer, staleFor = f.Answer, f.StaleFor
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.productIdx[key]
	switch answer {
	case AnswerNotApplied:
		item := productItem(p)
		item.PolicyValue = v
		return item
	case AnswerNotAppliedOld:
		return productItem(p)
	case AnswerStaleReads:
		if t.stale == nil {
			t.stale = map[string]staleRead{}
		}
		t.stale[key] = staleRead{value: t.readItem(p, now).PolicyValue, until: now.Add(staleFor)}
	default:
		delete(t.stale, key)
	}
	p.PolicyValue = v
	return productItem(p)
}

// readItem renders a product as a read sees it: during a stale-read window
// the value from before the write. The caller holds t.mu.
func (t *tenant) readItem(p *Product, now time.Time) policyItem {
	item := productItem(p)
	key := strings.ToUpper(p.ID)
	if st, ok := t.stale[key]; ok {
		if now.Before(st.until) {
			item.PolicyValue = st.value
		} else {
			delete(t.stale, key)
		}
	}
	return item
}
