package topo

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// store is one etcd cluster seen under one root: the global topology or a cell.
// It implements the etcd2 plugin's file semantics (etcd2topo/file.go).
type store struct {
	name    string // "global" or the cell name, for messages
	cli     *clientv3.Client
	root    string
	timeout time.Duration   // per request
	alive   context.Context // the Server's; done once it is closed
}

// kv is one stored record.
type kv struct {
	key    string // full etcd key
	value  []byte
	modRev int64
	lease  int64
}

// key turns a relative path into the etcd key, as etcd2topo does.
func (st *store) key(rel string) string { return path.Join(st.root, rel) }

// dirPrefix is the prefix under which a "directory" lists its files.
func (st *store) dirPrefix(rel string) string {
	p := path.Join(st.root, rel) + "/"
	if p == "//" {
		return "/"
	}
	return p
}

func (st *store) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, st.timeout)
}

// checkAlive returns ErrClosed once the Server is closed.
func (st *store) checkAlive(op, key string) error {
	if st.alive.Err() != nil {
		return st.wrap(op, key, ErrClosed)
	}
	return nil
}

func (st *store) wrap(op, key string, err error) error {
	return fmt.Errorf("topo %s: %s %s: %w", st.name, op, key, err)
}

// get returns the value and ModRevision of a key, or ErrNoNode.
func (st *store) get(ctx context.Context, rel string) ([]byte, int64, error) {
	key := st.key(rel)
	if err := st.checkAlive("get", key); err != nil {
		return nil, 0, err
	}
	rctx, cancel := st.reqCtx(ctx)
	defer cancel()
	resp, err := st.cli.Get(rctx, key)
	if err != nil {
		return nil, 0, st.wrap("get", key, err)
	}
	if len(resp.Kvs) != 1 {
		return nil, 0, st.wrap("get", key, ErrNoNode)
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision, nil
}

// create writes a key only if it does not exist; ErrNodeExists otherwise.
// It returns the new ModRevision.
func (st *store) create(ctx context.Context, rel string, data []byte) (int64, error) {
	key := st.key(rel)
	if err := st.checkAlive("create", key); err != nil {
		return 0, err
	}
	rctx, cancel := st.reqCtx(ctx)
	defer cancel()
	resp, err := st.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(data))).
		Commit()
	if err != nil {
		return 0, st.wrap("create", key, err)
	}
	if !resp.Succeeded {
		return 0, st.wrap("create", key, ErrNodeExists)
	}
	return resp.Header.Revision, nil
}

// update writes a key only if its ModRevision is still modRev; ErrBadVersion
// otherwise (including when the key was deleted). It returns the new ModRevision.
func (st *store) update(ctx context.Context, rel string, data []byte, modRev int64) (int64, error) {
	key := st.key(rel)
	if err := st.checkAlive("update", key); err != nil {
		return 0, err
	}
	rctx, cancel := st.reqCtx(ctx)
	defer cancel()
	resp, err := st.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", modRev)).
		Then(clientv3.OpPut(key, string(data))).
		Commit()
	if err != nil {
		return 0, st.wrap("update", key, err)
	}
	if !resp.Succeeded {
		return 0, st.wrap("update", key, ErrBadVersion)
	}
	return resp.Header.Revision, nil
}

// list returns every key under a directory (recursively), sorted by key.
// An empty directory is not an error: it returns no records.
func (st *store) list(ctx context.Context, dirRel string) ([]kv, error) {
	prefix := st.dirPrefix(dirRel)
	if err := st.checkAlive("list", prefix); err != nil {
		return nil, err
	}
	rctx, cancel := st.reqCtx(ctx)
	defer cancel()
	resp, err := st.cli.Get(rctx, prefix, clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, st.wrap("list", prefix, err)
	}
	out := make([]kv, 0, len(resp.Kvs))
	for _, e := range resp.Kvs {
		out = append(out, kv{key: string(e.Key), value: e.Value, modRev: e.ModRevision, lease: e.Lease})
	}
	return out, nil
}

// listDir returns the names of the direct children of a directory, like
// etcd2topo's ListDir, or ErrNoNode when nothing is stored under it.
func (st *store) listDir(ctx context.Context, dirRel string) ([]string, error) {
	prefix := st.dirPrefix(dirRel)
	if err := st.checkAlive("list", prefix); err != nil {
		return nil, err
	}
	rctx, cancel := st.reqCtx(ctx)
	defer cancel()
	resp, err := st.cli.Get(rctx, prefix, clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend), clientv3.WithKeysOnly())
	if err != nil {
		return nil, st.wrap("list", prefix, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, st.wrap("list", prefix, ErrNoNode)
	}
	var names []string
	for _, e := range resp.Kvs {
		name := strings.TrimPrefix(string(e.Key), prefix)
		if i := strings.IndexByte(name, '/'); i >= 0 {
			name = name[:i]
		}
		if len(names) == 0 || names[len(names)-1] != name {
			names = append(names, name)
		}
	}
	return names, nil
}

// marshal encodes a record deterministically (map fields sorted) so equal
// records produce equal bytes.
func marshal(m proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// getProto reads and decodes a record; it returns its ModRevision.
func (st *store) getProto(ctx context.Context, rel string, m proto.Message) (int64, error) {
	data, rev, err := st.get(ctx, rel)
	if err != nil {
		return 0, err
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return 0, fmt.Errorf("topo %s: decoding %s as %s: %w", st.name, st.key(rel), m.ProtoReflect().Descriptor().FullName(), err)
	}
	return rev, nil
}

// createProto encodes and creates a record if absent.
func (st *store) createProto(ctx context.Context, rel string, m proto.Message) (int64, error) {
	data, err := marshal(m)
	if err != nil {
		return 0, fmt.Errorf("topo: encoding %s: %w", rel, err)
	}
	return st.create(ctx, rel, data)
}

// updateProto encodes and compare-and-swaps a record.
func (st *store) updateProto(ctx context.Context, rel string, m proto.Message, modRev int64) (int64, error) {
	data, err := marshal(m)
	if err != nil {
		return 0, fmt.Errorf("topo: encoding %s: %w", rel, err)
	}
	return st.update(ctx, rel, data, modRev)
}

// unmarshal decodes a record.
func unmarshal(data []byte, m proto.Message) error { return proto.Unmarshal(data, m) }
