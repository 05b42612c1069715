package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Config configures an S3-compatible storage (vttablet's --s3-backup-* flags).
// Credentials come from the AWS SDK's default chain: AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY, the shared credentials file (AWS_PROFILE), or an instance role.
type S3Config struct {
	Bucket         string // --s3-backup-storage-bucket
	Root           string // --s3-backup-storage-root: key prefix
	Endpoint       string // --s3-backup-aws-endpoint: "" for AWS itself
	Region         string // --s3-backup-aws-region
	ForcePathStyle bool   // --s3-backup-force-path-style (MinIO, Ceph, versitygw …)
	// PartSize is the multipart part size (--s3-backup-aws-min-partsize, at least 5 MiB);
	// Concurrency the parts of one file in flight at once.
	PartSize    int64
	Concurrency int
	// AccessKey and SecretKey, when set, replace the default credential chain (tests and
	// programs embedding tabletd; the daemon uses the chain). Never logged.
	AccessKey, SecretKey string
}

// DefaultS3Config returns vttablet's defaults.
func DefaultS3Config() S3Config {
	return S3Config{Region: "us-east-1", PartSize: 8 << 20, Concurrency: 4}
}

// Validate reports the first unusable setting, naming its flag.
func (c S3Config) Validate() error {
	switch {
	case c.Bucket == "":
		return errors.New("--s3-backup-storage-bucket must be set for --backup-storage-implementation s3")
	case c.Region == "":
		return errors.New("--s3-backup-aws-region must not be empty")
	case c.PartSize < 5<<20:
		return fmt.Errorf("--s3-backup-aws-min-partsize %d is below S3's minimum part size of 5 MiB", c.PartSize)
	case c.Concurrency < 1:
		return errors.New("S3 upload concurrency must be at least 1")
	}
	return nil
}

// S3 keeps backups as objects <root>/<keyspace>/<shard>/<backup>/<file> in one bucket, the
// layout of Vitess's s3 backup storage. Large files go up as multipart uploads, parts in
// parallel; payload checksums are sent only when S3 requires them (plain PUTs, no
// aws-chunked encoding, which several S3-compatible servers refuse: vitess#18210).
type S3 struct {
	cfg S3Config
	cli *s3.Client
}

// NewS3 builds the client; nothing is contacted until the first call (Check proves access).
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(cfg.Region)}
	if cfg.AccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: AWS configuration: %v", ErrUnusable, err)
	}
	cli := s3.NewFromConfig(ac, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.ForcePathStyle
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return &S3{cfg: cfg, cli: cli}, nil
}

// Describe implements Storage.
func (s *S3) Describe() string {
	d := "s3 " + s.cfg.Bucket + "/" + s.cfg.Root
	if s.cfg.Endpoint != "" {
		d += " at " + s.cfg.Endpoint
	}
	return d
}

// Close implements Storage.
func (s *S3) Close() error { return nil }

// Check implements Storage: the bucket answers to these credentials.
func (s *S3) Check(ctx context.Context) error {
	if _, err := s.cli.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.cfg.Bucket)}); err != nil {
		return fmt.Errorf("%w: %s: bucket %s: %v", ErrUnusable, s.Describe(), s.cfg.Bucket, s3Cause(err))
	}
	return nil
}

func (s *S3) key(parts ...string) string {
	return strings.TrimPrefix(path.Join(append([]string{s.cfg.Root}, parts...)...), "/")
}

// ListBackups implements Storage.
func (s *S3) ListBackups(ctx context.Context, dir string) ([]string, error) {
	if err := CheckDir(dir); err != nil {
		return nil, err
	}
	prefix := s.key(dir) + "/"
	var names []string
	p := s3.NewListObjectsV2Paginator(s.cli, &s3.ListObjectsV2Input{Bucket: aws.String(s.cfg.Bucket),
		Prefix: aws.String(prefix), Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing backups in %s: %w", s.Describe(), s3Cause(err))
		}
		for _, cp := range page.CommonPrefixes {
			names = append(names, strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/"))
		}
	}
	return sorted(names), nil
}

// StartBackup implements Storage.
func (s *S3) StartBackup(ctx context.Context, dir, name string) (Writer, error) {
	if err := CheckDir(dir); err != nil {
		return nil, err
	}
	if err := CheckName("backup", name); err != nil {
		return nil, err
	}
	if err := s.Check(ctx); err != nil {
		return nil, err
	}
	return &s3Writer{s: s, dir: dir, name: name}, nil
}

// ReadFile implements Storage.
func (s *S3) ReadFile(ctx context.Context, dir, name, file string) (io.ReadCloser, error) {
	if err := CheckDir(dir); err != nil {
		return nil, err
	}
	if err := CheckName("backup", name); err != nil {
		return nil, err
	}
	if err := CheckName("file", file); err != nil {
		return nil, err
	}
	out, err := s.cli.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.key(dir, name, file))})
	if err != nil {
		if isS3NotFound(err) {
			return nil, fmt.Errorf("backup %s/%s: file %s: %w", dir, name, file, ErrNotFound)
		}
		return nil, fmt.Errorf("reading %s/%s/%s from %s: %w", dir, name, file, s.Describe(), s3Cause(err))
	}
	return out.Body, nil
}

// RemoveBackup implements Storage.
func (s *S3) RemoveBackup(ctx context.Context, dir, name string) error {
	if err := CheckDir(dir); err != nil {
		return err
	}
	if err := CheckName("backup", name); err != nil {
		return err
	}
	prefix := s.key(dir, name) + "/"
	n := 0
	p := s3.NewListObjectsV2Paginator(s.cli, &s3.ListObjectsV2Input{Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing %s/%s in %s: %w", dir, name, s.Describe(), s3Cause(err))
		}
		for _, o := range page.Contents {
			if _, err := s.cli.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: o.Key}); err != nil {
				return fmt.Errorf("deleting %s: %w", aws.ToString(o.Key), s3Cause(err))
			}
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("backup %s/%s: %w", dir, name, ErrNotFound)
	}
	return nil
}

type s3Writer struct {
	s         *S3
	dir, name string
	mu        sync.Mutex
	keys      []string // objects completed, removed by Abort
}

func (w *s3Writer) AddFile(ctx context.Context, file string, _ int64) (io.WriteCloser, error) {
	if err := CheckName("file", file); err != nil {
		return nil, err
	}
	return newS3Upload(ctx, w, w.s.key(w.dir, w.name, file)), nil
}

func (w *s3Writer) Abort(ctx context.Context) error {
	w.mu.Lock()
	keys := append([]string(nil), w.keys...)
	w.mu.Unlock()
	var first error
	for _, k := range keys {
		if _, err := w.s.cli.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(w.s.cfg.Bucket), Key: aws.String(k)}); err != nil && first == nil {
			first = s3Cause(err)
		}
	}
	return first
}

func (w *s3Writer) done(key string) {
	w.mu.Lock()
	w.keys = append(w.keys, key)
	w.mu.Unlock()
}

// s3Cause keeps the service's error code and message (not the SDK's retry wrapping).
func s3Cause(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return err
}

func isS3NotFound(err error) bool {
	var nsk *s3types.NoSuchKey
	var ae smithy.APIError
	return errors.As(err, &nsk) || (errors.As(err, &ae) && (ae.ErrorCode() == "NotFound" || ae.ErrorCode() == "NoSuchKey"))
}
