package backup

import (
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// pzstdChunk is the raw bytes per independent zstd frame. Frames are compressed in
// parallel and written in order; a stream of concatenated frames is a valid zstd stream
// (what pzstd and zstd -T write), which every decoder reads as one.
const pzstdChunk = 4 << 20

// parallelZstd compresses with n goroutines, owned by the writer and ended by Close. A
// streaming zstd encoder overlaps only one block with the caller; whole frames per goroutine
// use every core the backup is given (--backup-storage-number-blocks).
type parallelZstd struct {
	w     io.Writer
	enc   *zstd.Encoder // EncodeAll is safe for concurrent use
	buf   []byte
	jobs  chan *pzJob
	order chan *pzJob
	wg    sync.WaitGroup
	done  chan struct{} // the ordered writer has ended
	pool  sync.Pool     // raw chunk buffers
	// outPool recycles frame buffers: a backup would otherwise leave its whole compressed
	// size to the garbage collector.
	outPool sync.Pool
	// frames counts the chunks queued (the empty stream still gets one frame).
	frames int

	mu  sync.Mutex
	err error
}

type pzJob struct {
	in, out []byte
	ready   chan struct{}
}

func newParallelZstd(w io.Writer, level, n int) (*parallelZstd, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)), zstd.WithEncoderConcurrency(n),
		zstd.WithLowerEncoderMem(false))
	if err != nil {
		return nil, err
	}
	p := &parallelZstd{w: w, enc: enc, jobs: make(chan *pzJob, n), order: make(chan *pzJob, 2*n), done: make(chan struct{})}
	p.pool.New = func() any { return make([]byte, 0, pzstdChunk) }
	p.outPool.New = func() any { return make([]byte, 0, pzstdChunk/2) }
	p.buf = p.pool.Get().([]byte)
	for i := 0; i < n; i++ {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := range p.jobs {
				j.out = p.enc.EncodeAll(j.in, p.outPool.Get().([]byte)[:0])
				close(j.ready)
			}
		}()
	}
	go p.writeOrdered()
	return p, nil
}

// writeOrdered writes the frames in the order their chunks were written.
func (p *parallelZstd) writeOrdered() {
	defer close(p.done)
	for j := range p.order {
		<-j.ready
		if p.failed() == nil {
			if _, err := p.w.Write(j.out); err != nil {
				p.fail(err)
			}
		}
		p.pool.Put(j.in[:0])     //nolint:staticcheck // slices are what the pool holds
		p.outPool.Put(j.out[:0]) //nolint:staticcheck // slices are what the pool holds
	}
}

func (p *parallelZstd) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *parallelZstd) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

func (p *parallelZstd) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if err := p.failed(); err != nil {
			return n, err
		}
		k := min(pzstdChunk-len(p.buf), len(b))
		p.buf = append(p.buf, b[:k]...)
		b, n = b[k:], n+k
		if len(p.buf) == pzstdChunk {
			p.flush()
		}
	}
	return n, nil
}

func (p *parallelZstd) flush() {
	if len(p.buf) == 0 {
		return
	}
	p.queue(p.pool.Get().([]byte))
}

// queue hands the buffer to a worker (and its place in the order to the writer), then
// starts next as the new buffer.
func (p *parallelZstd) queue(next []byte) {
	j := &pzJob{in: p.buf, ready: make(chan struct{})}
	p.buf = next
	p.frames++
	p.order <- j // bounded: at most 2n chunks in flight
	p.jobs <- j
}

// Close compresses what is buffered, waits for every frame to be written and ends the
// goroutines. An empty stream is one empty frame, so the file still decodes.
func (p *parallelZstd) Close() error {
	if p.jobs == nil {
		return errors.New("parallel zstd writer closed twice")
	}
	if len(p.buf) > 0 || p.frames == 0 {
		p.queue(nil)
	}
	close(p.jobs)
	close(p.order)
	p.wg.Wait()
	<-p.done
	p.jobs = nil
	_ = p.enc.Close()
	return p.failed()
}
