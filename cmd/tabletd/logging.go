package main

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logOptions are vttablet's (glog's) log destination flags. tabletd always logs to stderr;
// --log_dir adds a file there, named as glog names it, unless --logtostderr says stderr only.
type logOptions struct {
	dir        string
	toStderr   bool
	alsoStderr bool
}

func (l *logOptions) bind(fs *pflag.FlagSet) {
	fs.StringVar(&l.dir, "log_dir", "", "also write the log to a file in this directory: <prog>.<host>.<user>.log.INFO.<time>.<pid>, with the <prog>.INFO symlink (as glog)")
	fs.BoolVar(&l.toStderr, "logtostderr", false, "log to stderr only, never to a --log_dir file")
	fs.BoolVar(&l.alsoStderr, "alsologtostderr", false, "accepted: tabletd always logs to stderr")
}

// openFile creates the --log_dir file and points <prog>.INFO at it; nil without --log_dir or
// with --logtostderr.
func (l *logOptions) openFile(prog string, now time.Time) (*os.File, error) {
	if l.dir == "" || l.toStderr {
		return nil, nil
	}
	host, _ := os.Hostname()
	uname := "unknown"
	if u, err := user.Current(); err == nil {
		uname = u.Username
	}
	name := fmt.Sprintf("%s.%s.%s.log.INFO.%s.%d", prog, orDefault(host, "unknownhost"), uname, now.Format("20060102-150405"), os.Getpid())
	f, err := os.OpenFile(filepath.Join(l.dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--log_dir: %w", err)
	}
	link := filepath.Join(l.dir, prog+".INFO")
	_ = os.Remove(link)
	_ = os.Symlink(name, link) // a convenience, as in glog: the log itself is written either way
	return f, nil
}

// newLogger logs JSON or console lines to stderr (and to file when not nil), with the tablet
// alias on every line.
func newLogger(format, level string, stderr, file io.Writer, alias string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, fmt.Errorf("--log-format %q: use json or console", format)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(stderr)), lvl)
	if file != nil {
		core = zapcore.NewTee(core, zapcore.NewCore(enc.Clone(), zapcore.Lock(zapcore.AddSync(file)), lvl))
	}
	return zap.New(core).With(zap.String("tablet", alias)), nil
}
