package auth

import (
	"container/list"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// lru is a bounded map of credentials; the least recently used entry is
// dropped when a new one would exceed max.
type lru struct {
	mu    sync.Mutex
	max   int
	order *list.List // front = most recently used; values are *lruEntry
	items map[cacheKey]*list.Element
}

type lruEntry struct {
	key  cacheKey
	cred azcore.TokenCredential
}

func newLRU(max int) *lru {
	return &lru{max: max, order: list.New(), items: map[cacheKey]*list.Element{}}
}

// get returns the credential for k and marks it used.
func (c *lru) get(k cacheKey) (azcore.TokenCredential, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruEntry).cred, true
}

// add stores cred under k unless another caller stored one first, and returns
// the stored credential so that concurrent callers share one object.
func (c *lru) add(k cacheKey, cred azcore.TokenCredential) azcore.TokenCredential {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*lruEntry).cred
	}
	c.items[k] = c.order.PushFront(&lruEntry{key: k, cred: cred})
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*lruEntry).key)
	}
	return cred
}

// len returns the number of cached credentials.
func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
