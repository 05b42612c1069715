package backup

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/tabletd/tabletd/backup/storage"
)

// Stripe is one stored file of a streamed backup, with what the MANIFEST records to verify it.
type Stripe struct {
	Name string
	// Size and Hash (CRC-32 IEEE, hex, as Vitess's builtin FileEntries) are of the stored,
	// compressed bytes: a restore checks them while downloading, before anything is unpacked
	// over the datadir.
	Size int64
	Hash string
}

// countingHash counts and hashes what passes through it.
type countingHash struct {
	h hash.Hash32
	n int64
}

func newCountingHash() *countingHash { return &countingHash{h: crc32.NewIEEE()} }

func (c *countingHash) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}

func (c *countingHash) sum() string { return fmt.Sprintf("%08x", c.h.Sum32()) }

// stripeNames are Vitess's names: <base> alone, or <base>-000, -001, … for N > 1 stripes.
func stripeNames(base string, n int) []string {
	if n <= 1 {
		return []string{base}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%03d", base, i)
	}
	return names
}

// writeStriped reads src to its end and stores it as len(names) files: blocks of blockSize
// raw bytes go round-robin to the stripes (Vitess's xtrabackup striping), each stripe
// compressed and uploaded by its own goroutine, so N stripes compress and upload in parallel.
// Every goroutine has ended when it returns.
//
// abort (may be nil; stripes may call it concurrently) is called as soon as a stripe fails, to stop src's producer: the reader
// goroutine may be blocked reading src, and only the producer ending unblocks it.
func writeStriped(ctx context.Context, w storage.Writer, names []string, blockSize int, comp compression, src io.Reader, abort func()) ([]Stripe, error) {
	if len(names) == 1 {
		blockSize = max(blockSize, 1<<20) // no interleaving: read in large pieces
	}
	g, gctx := errgroup.WithContext(ctx)
	chans := make([]chan []byte, len(names))
	out := make([]Stripe, len(names))
	free := make(chan []byte, 4*len(names)) // recycled blocks
	// cause is the first stripe failure that was not itself caused by the group ending: the
	// error to report. abort (stopping the tool) runs before that stripe's error reaches the
	// group, so the reader's "closed pipe" that follows may reach it first.
	var cause error
	var causeOnce sync.Once
	for i, name := range names {
		ch := make(chan []byte, 2)
		chans[i] = ch
		g.Go(func() error {
			st, err := storeStripe(gctx, w, name, comp, ch, free)
			out[i] = st
			if err != nil {
				if gctx.Err() == nil {
					causeOnce.Do(func() { cause = err })
				}
				if abort != nil {
					abort()
				}
			}
			return err
		})
	}
	g.Go(func() error {
		defer func() {
			for _, ch := range chans {
				close(ch)
			}
		}()
		for i := 0; ; i = (i + 1) % len(chans) {
			var blk []byte
			select {
			case blk = <-free:
			default:
				blk = make([]byte, blockSize)
			}
			n, err := io.ReadFull(src, blk[:blockSize])
			if n > 0 {
				select {
				case chans[i] <- blk[:n]:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			switch {
			case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
				return nil
			case err != nil:
				return err
			}
		}
	})
	if err := g.Wait(); err != nil {
		if cause != nil {
			return nil, cause
		}
		return nil, err
	}
	return out, nil
}

// storeStripe compresses the blocks of one stripe into one storage file. On a failure it
// returns at once: its error cancels the group's context, which is what the reader
// goroutine's sends select on (it never blocks on a stripe that has given up).
func storeStripe(ctx context.Context, w storage.Writer, name string, comp compression, blocks <-chan []byte, free chan<- []byte) (Stripe, error) {
	f, err := w.AddFile(ctx, name, -1)
	if err != nil {
		return Stripe{}, err
	}
	ch := newCountingHash()
	zw, err := comp.writer(io.MultiWriter(f, ch))
	if err != nil {
		_ = f.Close()
		return Stripe{}, err
	}
	var werr error
	for blk := range blocks {
		if _, werr = zw.Write(blk); werr != nil {
			break
		}
		select {
		case free <- blk[:cap(blk)]:
		default:
		}
	}
	if cerr := zw.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = f.Close()
		return Stripe{}, fmt.Errorf("writing %s: %w", name, werr)
	}
	if err := f.Close(); err != nil {
		return Stripe{}, err
	}
	return Stripe{Name: name, Size: ch.n, Hash: ch.sum()}, nil
}

// compression is a configured compressor ("" engine: stored raw).
type compression struct {
	engine      string
	level       int
	concurrency int
}

func (c compression) writer(w io.Writer) (io.WriteCloser, error) {
	switch {
	case c.engine == "":
		return nopWriteCloser{w}, nil
	case c.engine == CompressZstd && c.concurrency > 1:
		return newParallelZstd(w, c.level, c.concurrency)
	}
	return newCompressor(c.engine, c.level, c.concurrency, w)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// CorruptError says a stored file does not match its MANIFEST entry (or does not
// decompress): the backup must not be restored. It wraps ErrCorrupt.
type CorruptError struct {
	Backup, File string
	Detail       string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("backup %s is corrupt: file %s %s", e.Backup, e.File, e.Detail)
}

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// stripedReader reassembles what writeStriped stored: it reads blockSize raw bytes from each
// stripe in turn. Each stripe's stored bytes are counted and hashed; at its end they must
// match the MANIFEST, else Read fails with a *CorruptError naming the file.
type stripedReader struct {
	backup    string
	stripes   []*stripeSource
	blockSize int
	cur       int
	left      int // bytes of the current block still to read from stripes[cur]
	done      int // stripes that reached their end
	closeOnce sync.Once
}

type stripeSource struct {
	meta   Stripe
	raw    io.ReadCloser
	hash   *countingHash
	dec    io.ReadCloser
	ended  bool
	verify bool
}

func openStriped(ctx context.Context, st storage.Storage, dir, name string, m *Manifest) (*stripedReader, error) {
	r := &stripedReader{backup: dir + "/" + name, blockSize: int(m.StripeBlockSize)}
	stripes := m.Stripes
	if len(stripes) == 0 { // a Vitess xtrabackup MANIFEST: names only, nothing to verify against
		for _, n := range stripeNames(m.FileName, int(m.NumStripes)) {
			stripes = append(stripes, Stripe{Name: n})
		}
	}
	if len(stripes) > 1 && r.blockSize <= 0 {
		return nil, &CorruptError{Backup: r.backup, File: "MANIFEST", Detail: fmt.Sprintf("has %d stripes but StripeBlockSize %d", len(stripes), r.blockSize)}
	}
	engine := m.CompressionEngine
	if m.SkipCompress {
		engine = ""
	}
	for _, s := range stripes {
		raw, err := st.ReadFile(ctx, dir, name, s.Name)
		if err != nil {
			r.Close()
			if errors.Is(err, storage.ErrNotFound) {
				return nil, &CorruptError{Backup: r.backup, File: s.Name, Detail: "is missing"}
			}
			return nil, err
		}
		src := &stripeSource{meta: s, raw: raw, hash: newCountingHash(), verify: s.Hash != ""}
		dec, err := newDecompressor(engine, io.TeeReader(raw, src.hash))
		if err != nil {
			_ = raw.Close()
			r.Close()
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, &CorruptError{Backup: r.backup, File: s.Name, Detail: "is empty or truncated"}
			}
			return nil, &CorruptError{Backup: r.backup, File: s.Name, Detail: "does not decompress: " + err.Error()}
		}
		src.dec = dec
		r.stripes = append(r.stripes, src)
	}
	if len(r.stripes) == 1 {
		r.blockSize = 1 << 30 // one stripe: no interleaving
	}
	r.left = r.blockSize
	return r, nil
}

func (r *stripedReader) Read(p []byte) (int, error) {
	for {
		if r.done == len(r.stripes) {
			return 0, io.EOF
		}
		s := r.stripes[r.cur]
		if s.ended {
			r.next()
			continue
		}
		n, err := s.dec.Read(p[:min(len(p), r.left)])
		r.left -= n
		if err == io.EOF {
			if verr := r.finish(s); verr != nil {
				return n, verr
			}
			if n == 0 {
				r.next()
				continue
			}
		} else if err != nil {
			return n, &CorruptError{Backup: r.backup, File: s.meta.Name, Detail: "does not decompress: " + err.Error()}
		}
		if r.left == 0 {
			r.next()
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (r *stripedReader) next() {
	r.cur = (r.cur + 1) % len(r.stripes)
	r.left = r.blockSize
}

// finish checks one stripe at its end: the rest of its stored bytes are read (a decoder may
// stop before trailing bytes) and must match the MANIFEST's size and hash.
func (r *stripedReader) finish(s *stripeSource) error {
	s.ended = true
	r.done++
	if _, err := io.Copy(s.hash, s.raw); err != nil {
		return err
	}
	if !s.verify {
		return nil
	}
	if s.hash.n != s.meta.Size || s.hash.sum() != s.meta.Hash {
		return &CorruptError{Backup: r.backup, File: s.meta.Name,
			Detail: fmt.Sprintf("does not match its MANIFEST entry: %d bytes with CRC-32 %s, MANIFEST says %d bytes with CRC-32 %s",
				s.hash.n, s.hash.sum(), s.meta.Size, s.meta.Hash)}
	}
	return nil
}

// verifyRest checks every stripe not yet read to its end against the MANIFEST, from its
// stored bytes, without decompressing them. A restore whose unpacker failed calls it so that
// a corrupt stripe is reported as such (DATA_LOSS naming the file) rather than as whatever
// the unpacker made of the damaged bytes. Each decoder is closed first: zstd and pgzip read
// ahead in goroutines of their own, and Close waits for them.
func (r *stripedReader) verifyRest() error {
	for _, s := range r.stripes {
		if s.ended {
			continue
		}
		if s.dec != nil {
			_ = s.dec.Close()
			s.dec = nil
		}
		if err := r.finish(s); err != nil {
			return err
		}
	}
	return nil
}

// Close releases every stripe.
func (r *stripedReader) Close() {
	r.closeOnce.Do(func() {
		for _, s := range r.stripes {
			if s.dec != nil {
				_ = s.dec.Close()
			}
			_ = s.raw.Close()
		}
	})
}
