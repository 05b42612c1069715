package localetcd

import (
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// quietLogger derives etcd's logger from lg. etcd is chatty: at Info it
// narrates every raft step, and at Warn it repeats advice that does not apply
// to a local single node ("simple token is not cryptographically signed",
// "running http and grpc on a single port"). So only Error and above pass,
// and nothing passes once closing is set, because a normal shutdown makes
// etcd log the closed listeners as errors.
func quietLogger(lg *zap.Logger, closing *atomic.Bool) *zap.Logger {
	return lg.Named("etcd").WithOptions(
		zap.IncreaseLevel(zapcore.ErrorLevel),
		zap.WrapCore(func(c zapcore.Core) zapcore.Core { return muteCore{Core: c, muted: closing} }),
	)
}

// muteCore drops every entry while muted is set.
type muteCore struct {
	zapcore.Core
	muted *atomic.Bool
}

func (c muteCore) Enabled(l zapcore.Level) bool {
	return !c.muted.Load() && c.Core.Enabled(l)
}

func (c muteCore) With(fields []zapcore.Field) zapcore.Core {
	return muteCore{Core: c.Core.With(fields), muted: c.muted}
}

func (c muteCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.muted.Load() {
		return ce
	}
	return c.Core.Check(e, ce)
}
