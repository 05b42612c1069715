package vstreamer

import (
	"bytes"
	"crypto/cipher"
	"crypto/des"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/topodatapb"
)

// vindex maps a column value to a keyspace id, as the Vitess vindex of the same type does:
// the keyspace ids must be byte for byte Vitess's, or rows land in the wrong shard.
type vindex interface {
	// keyspaceID maps one (non-NULL) value of type typ.
	keyspaceID(typ querypb.Type, v []byte) ([]byte, error)
}

// functional vindex types tabletd can evaluate. Lookup vindexes need a lookup table and are
// not unique-functional; Vitess refuses them for VReplication filters too.
var vindexTypes = map[string]func() vindex{
	"hash":         newHashVindex,
	"numeric":      func() vindex { return numericVindex{} },
	"reverse_bits": func() vindex { return reverseBitsVindex{} },
	"binary":       func() vindex { return binaryVindex{} },
	"binary_md5":   func() vindex { return md5Vindex{} },
	"xxhash":       func() vindex { return xxhashVindex{} },
}

// vindexCost orders a table's column vindexes as Vitess picks the primary one: the cheapest
// unique vindex wins, the first declared among equals.
var vindexCost = map[string]int{"numeric": 0, "binary": 0, "reverse_bits": 1, "hash": 1, "binary_md5": 1, "xxhash": 1}

func newVindex(typ string) (vindex, error) {
	mk, ok := vindexTypes[typ]
	if !ok {
		return nil, fmt.Errorf("vindex type %q is not supported by tabletd's streamer (supported: hash, numeric, reverse_bits, binary, binary_md5, xxhash)", typ)
	}
	return mk(), nil
}

// hashVindex is Vitess's hash vindex: the 8 big-endian bytes of the value encrypted as one
// block with DES under an all-zero key (equivalent to the 3DES with a null key it once used).
type hashVindex struct{ block cipher.Block }

func newHashVindex() vindex {
	b, err := des.NewCipher(make([]byte, 8))
	if err != nil {
		panic(err) // unreachable: an 8-byte key is always accepted
	}
	return hashVindex{b}
}

func (h hashVindex) keyspaceID(typ querypb.Type, v []byte) ([]byte, error) {
	n, err := toUint64(typ, v, true)
	if err != nil {
		return nil, err
	}
	var in, out [8]byte
	binary.BigEndian.PutUint64(in[:], n)
	h.block.Encrypt(out[:], in[:])
	return out[:], nil
}

type numericVindex struct{}

func (numericVindex) keyspaceID(typ querypb.Type, v []byte) ([]byte, error) {
	n, err := toUint64(typ, v, false)
	if err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint64(nil, n), nil
}

type reverseBitsVindex struct{}

func (reverseBitsVindex) keyspaceID(typ querypb.Type, v []byte) ([]byte, error) {
	n, err := toUint64(typ, v, false)
	if err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint64(nil, bits.Reverse64(n)), nil
}

type binaryVindex struct{}

func (binaryVindex) keyspaceID(_ querypb.Type, v []byte) ([]byte, error) {
	return bytes.Clone(v), nil
}

type md5Vindex struct{}

func (md5Vindex) keyspaceID(_ querypb.Type, v []byte) ([]byte, error) {
	sum := md5.Sum(v)
	return sum[:], nil
}

type xxhashVindex struct{}

// keyspaceID is XXH64 (seed 0) of the value's bytes, written little-endian as Vitess does.
func (xxhashVindex) keyspaceID(_ querypb.Type, v []byte) ([]byte, error) {
	return binary.LittleEndian.AppendUint64(nil, xxh64(v)), nil
}

// toUint64 reads an integer column value as Vitess's vindexes do: a signed integer type is
// parsed as int64 and reinterpreted as two's complement when signedWraps (hash: -1 maps like
// 18446744073709551615); any other value must read as an unsigned integer.
func toUint64(typ querypb.Type, v []byte, signedWraps bool) (uint64, error) {
	s := string(v)
	if signedWraps && isSigned(typ) {
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cannot map %q to a keyspace id: not an integer", s)
		}
		return uint64(i), nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cannot map %q to a keyspace id: not an unsigned integer", s)
	}
	return n, nil
}

func isSigned(t querypb.Type) bool {
	switch t {
	case querypb.Type_INT8, querypb.Type_INT16, querypb.Type_INT24, querypb.Type_INT32, querypb.Type_INT64:
		return true
	}
	return false
}

// keyRange is a half-open range of keyspace ids [start, end); an empty bound is unbounded.
type keyRange struct{ start, end []byte }

// parseKeyRange reads a shard-style key range spec: "-80", "80-", "40-c0", or "-" / "0" for
// everything. Hex must be valid and start must be below end.
func parseKeyRange(spec string) (keyRange, error) {
	if spec == "0" || spec == "-" {
		return keyRange{}, nil
	}
	lo, hi, ok := strings.Cut(spec, "-")
	if !ok || strings.Contains(hi, "-") {
		return keyRange{}, fmt.Errorf("malformed key range %q: want <start>-<end> in hex, e.g. -80 or 80-", spec)
	}
	start, err := hex.DecodeString(lo)
	if err != nil {
		return keyRange{}, fmt.Errorf("malformed key range %q: start %q is not hex", spec, lo)
	}
	end, err := hex.DecodeString(hi)
	if err != nil {
		return keyRange{}, fmt.Errorf("malformed key range %q: end %q is not hex", spec, hi)
	}
	kr := keyRange{start: trimZeros(start), end: trimZeros(end)}
	if len(kr.end) > 0 && bytes.Compare(kr.start, kr.end) >= 0 {
		return keyRange{}, fmt.Errorf("malformed key range %q: start must be below end", spec)
	}
	return kr, nil
}

// keyRangeFromProto converts a topodata key range.
func keyRangeFromProto(kr *topodatapb.KeyRange) keyRange {
	if kr == nil {
		return keyRange{}
	}
	return keyRange{start: trimZeros(kr.Start), end: trimZeros(kr.End)}
}

// contains compares ids with trailing zero bytes removed, as Vitess does (-80 == 00-8000).
func (kr keyRange) contains(id []byte) bool {
	id = trimZeros(id)
	return (len(kr.start) == 0 || bytes.Compare(id, kr.start) >= 0) &&
		(len(kr.end) == 0 || bytes.Compare(id, kr.end) < 0)
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// XXH64 with seed 0 (Yann Collet's xxHash, 64-bit variant), as specified in
// https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md.
const (
	xxPrime1 uint64 = 11400714785074694791
	xxPrime2 uint64 = 14029467366897019727
	xxPrime3 uint64 = 1609587929392839161
	xxPrime4 uint64 = 9650029242287828579
	xxPrime5 uint64 = 2870177450012600261
)

func xxRound(acc, lane uint64) uint64 {
	acc += lane * xxPrime2
	acc = bits.RotateLeft64(acc, 31)
	return acc * xxPrime1
}

func xxMerge(acc, v uint64) uint64 {
	acc ^= xxRound(0, v)
	return acc*xxPrime1 + xxPrime4
}

func xxh64(b []byte) uint64 {
	n := len(b)
	var h uint64
	if n >= 32 {
		p1, p2 := xxPrime1, xxPrime2 // variables: the seed arithmetic wraps around
		v1, v2, v3, v4 := p1+p2, p2, uint64(0), -p1
		for len(b) >= 32 {
			v1 = xxRound(v1, binary.LittleEndian.Uint64(b[0:]))
			v2 = xxRound(v2, binary.LittleEndian.Uint64(b[8:]))
			v3 = xxRound(v3, binary.LittleEndian.Uint64(b[16:]))
			v4 = xxRound(v4, binary.LittleEndian.Uint64(b[24:]))
			b = b[32:]
		}
		h = bits.RotateLeft64(v1, 1) + bits.RotateLeft64(v2, 7) + bits.RotateLeft64(v3, 12) + bits.RotateLeft64(v4, 18)
		h = xxMerge(h, v1)
		h = xxMerge(h, v2)
		h = xxMerge(h, v3)
		h = xxMerge(h, v4)
	} else {
		h = xxPrime5
	}
	h += uint64(n)
	for ; len(b) >= 8; b = b[8:] {
		h ^= xxRound(0, binary.LittleEndian.Uint64(b))
		h = bits.RotateLeft64(h, 27)*xxPrime1 + xxPrime4
	}
	if len(b) >= 4 {
		h ^= uint64(binary.LittleEndian.Uint32(b)) * xxPrime1
		h = bits.RotateLeft64(h, 23)*xxPrime2 + xxPrime3
		b = b[4:]
	}
	for _, c := range b {
		h ^= uint64(c) * xxPrime5
		h = bits.RotateLeft64(h, 11) * xxPrime1
	}
	h ^= h >> 33
	h *= xxPrime2
	h ^= h >> 29
	h *= xxPrime3
	h ^= h >> 32
	return h
}
