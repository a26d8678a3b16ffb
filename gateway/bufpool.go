package gateway

import "sync"

// bytePool recycles byte buffers: get gives an empty one, put takes it back
// unless it grew past keep bytes (a large frame's buffer is left to the
// collector rather than kept for every later small one).
type bytePool struct {
	pool sync.Pool
	keep int
}

func newBytePool(initial, keep int) *bytePool {
	p := &bytePool{keep: keep}
	p.pool.New = func() any { b := make([]byte, 0, initial); return &b }
	return p
}

func (p *bytePool) get() *[]byte {
	b := p.pool.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

func (p *bytePool) put(b *[]byte) {
	if cap(*b) <= p.keep {
		p.pool.Put(b)
	}
}
