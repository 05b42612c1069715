package storage

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// s3Upload is one object being written: data is cut into PartSize parts, uploaded by up
// to Concurrency goroutines owned by the upload (all finished by Close). An object smaller
// than one part is a single PUT. Any failure aborts the multipart upload, so no partial
// object ever becomes visible.
type s3Upload struct {
	w   *s3Writer
	ctx context.Context
	key string

	buf      *bytes.Buffer
	uploadID string
	partNum  int32
	sem      chan struct{}
	wg       sync.WaitGroup

	mu    sync.Mutex
	parts []s3types.CompletedPart
	err   error
}

func newS3Upload(ctx context.Context, w *s3Writer, key string) *s3Upload {
	return &s3Upload{w: w, ctx: ctx, key: key, buf: bytes.NewBuffer(make([]byte, 0, w.s.cfg.PartSize)),
		sem: make(chan struct{}, w.s.cfg.Concurrency)}
}

func (u *s3Upload) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *s3Upload) fail(err error) {
	u.mu.Lock()
	if u.err == nil {
		u.err = err
	}
	u.mu.Unlock()
}

func (u *s3Upload) Write(p []byte) (int, error) {
	if err := u.failed(); err != nil {
		return 0, err
	}
	size := int(u.w.s.cfg.PartSize)
	n := 0
	for len(p) > 0 {
		room := size - u.buf.Len()
		chunk := p[:min(room, len(p))]
		u.buf.Write(chunk)
		n += len(chunk)
		p = p[len(chunk):]
		if u.buf.Len() == size {
			if err := u.flushPart(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flushPart hands the full buffer to an upload goroutine (waiting for a free slot).
func (u *s3Upload) flushPart() error {
	if u.uploadID == "" {
		out, err := u.w.s.cli.CreateMultipartUpload(u.ctx, &s3.CreateMultipartUploadInput{
			Bucket: aws.String(u.w.s.cfg.Bucket), Key: aws.String(u.key)})
		if err != nil {
			err = fmt.Errorf("starting upload of %s to %s: %w", u.key, u.w.s.Describe(), s3Cause(err))
			u.fail(err)
			return err
		}
		u.uploadID = aws.ToString(out.UploadId)
	}
	select {
	case u.sem <- struct{}{}:
	case <-u.ctx.Done():
		u.fail(u.ctx.Err())
		return u.ctx.Err()
	}
	u.partNum++
	num, data := u.partNum, u.buf
	u.buf = bytes.NewBuffer(make([]byte, 0, u.w.s.cfg.PartSize))
	u.wg.Add(1)
	go func() {
		defer func() { <-u.sem; u.wg.Done() }()
		out, err := u.w.s.cli.UploadPart(u.ctx, &s3.UploadPartInput{Bucket: aws.String(u.w.s.cfg.Bucket),
			Key: aws.String(u.key), UploadId: aws.String(u.uploadID), PartNumber: aws.Int32(num),
			Body: bytes.NewReader(data.Bytes()), ContentLength: aws.Int64(int64(data.Len()))})
		if err != nil {
			u.fail(fmt.Errorf("uploading part %d of %s to %s: %w", num, u.key, u.w.s.Describe(), s3Cause(err)))
			return
		}
		u.mu.Lock()
		u.parts = append(u.parts, s3types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
		u.mu.Unlock()
	}()
	return u.failed()
}

// Close uploads what is left and completes the object, or aborts it on any failure.
func (u *s3Upload) Close() error {
	if u.uploadID == "" && u.failed() == nil {
		_, err := u.w.s.cli.PutObject(u.ctx, &s3.PutObjectInput{Bucket: aws.String(u.w.s.cfg.Bucket), Key: aws.String(u.key),
			Body: bytes.NewReader(u.buf.Bytes()), ContentLength: aws.Int64(int64(u.buf.Len()))})
		if err != nil {
			return fmt.Errorf("writing %s to %s: %w", u.key, u.w.s.Describe(), s3Cause(err))
		}
		u.w.done(u.key)
		return nil
	}
	if u.buf.Len() > 0 && u.failed() == nil {
		_ = u.flushPart()
	}
	u.wg.Wait()
	if err := u.failed(); err != nil {
		u.abort()
		return err
	}
	sort.Slice(u.parts, func(i, j int) bool { return *u.parts[i].PartNumber < *u.parts[j].PartNumber })
	_, err := u.w.s.cli.CompleteMultipartUpload(u.ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(u.w.s.cfg.Bucket),
		Key: aws.String(u.key), UploadId: aws.String(u.uploadID), MultipartUpload: &s3types.CompletedMultipartUpload{Parts: u.parts}})
	if err != nil {
		u.abort()
		return fmt.Errorf("completing upload of %s to %s: %w", u.key, u.w.s.Describe(), s3Cause(err))
	}
	u.w.done(u.key)
	return nil
}

func (u *s3Upload) abort() {
	if u.uploadID == "" {
		return
	}
	// The upload's own context may be what failed: abort with a fresh one.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), abortTimeout)
	defer cancel()
	_, _ = u.w.s.cli.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(u.w.s.cfg.Bucket),
		Key: aws.String(u.key), UploadId: aws.String(u.uploadID)})
}

// abortTimeout bounds the clean-up of a failed multipart upload.
const abortTimeout = 30 * time.Second
