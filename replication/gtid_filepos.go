package replication

import (
	"strconv"
	"strings"
)

// filePos is a binary log coordinate "file:offset".
type filePos struct {
	file string
	pos  uint64
}

// parseFilePos parses "mysql-bin.000003:1234".
func parseFilePos(s string) (gtidSet, error) {
	trimmed := strings.TrimSpace(s)
	idx := strings.LastIndexByte(trimmed, ':')
	if idx <= 0 {
		return nil, invalid(PositionFilePos, trimmed, s, "want file:offset")
	}
	pos, err := strconv.ParseUint(trimmed[idx+1:], 10, 64)
	if err != nil {
		return nil, invalid(PositionFilePos, trimmed[idx+1:], s, "offset is not an unsigned number")
	}
	return filePos{file: trimmed[:idx], pos: pos}, nil
}

// String implements gtidSet.
func (f filePos) String() string { return f.file + ":" + strconv.FormatUint(f.pos, 10) }

// contains implements gtidSet: a coordinate contains every earlier one.
// Binary log names carry a fixed-width sequence suffix, so they compare as
// strings.
func (f filePos) contains(other gtidSet) bool {
	o := other.(filePos)
	if f.file != o.file {
		return f.file > o.file
	}
	return f.pos >= o.pos
}

// union implements gtidSet: the later of the two coordinates.
func (f filePos) union(other gtidSet) gtidSet {
	if f.contains(other) {
		return f
	}
	return other
}
