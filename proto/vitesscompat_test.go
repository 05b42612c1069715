//go:build interop

package proto_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/logutilpb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/queryservicepb"
	"github.com/tabletd/tabletd/proto/replicationdatapb"
	"github.com/tabletd/tabletd/proto/tableaclpb"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/tabletmanagerservicepb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vschemapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/proto/vttimepb"
)

// vitessVersion is the Vitess release whose .proto files ours must match.
const vitessVersion = "v0.23.0"

// omittedMethods are Vitess v23 RPCs tabletd does not model yet; their
// request and response messages are omitted with them.
var omittedMethods = map[protoreflect.FullName]bool{
	"tabletmanagerservice.TabletManager.MysqlHostMetrics":          true,
	"tabletmanagerservice.TabletManager.GetUnresolvedTransactions": true,
	"tabletmanagerservice.TabletManager.ReadTransaction":           true,
	"tabletmanagerservice.TabletManager.GetTransactionInfo":        true,
	"tabletmanagerservice.TabletManager.ConcludeTransaction":       true,
	"tabletmanagerservice.TabletManager.CheckThrottler":            true,
	"tabletmanagerservice.TabletManager.GetThrottlerStatus":        true,
}

// omittedOther are further Vitess v23 definitions tabletd leaves out.
var omittedOther = map[protoreflect.FullName]bool{
	"topodata.Shard.vtorc_state":                   true, // vtorcdata.Shard
	"topodata.Keyspace.vtorc_state":                true, // vtorcdata.Keyspace
	"tabletmanagerdata.CheckThrottlerResponseCode": true, // throttler
}

// TestMatchesVitessDescriptors compares the descriptors compiled into our
// generated packages with Vitess's own .proto files: every message, field,
// enum value and method we define must have Vitess's name, number, type,
// cardinality, JSON name, presence, oneof and streaming kind, in Vitess's
// declaration order; and nothing of Vitess's may be missing unless listed
// above. It needs protoc and the Vitess module sources (from the Go module
// cache, downloaded with `go mod download` when absent, or TABLETD_VITESS_PROTO_DIR); it is
// built only with -tags interop (make interop), where a missing dependency is a failure.
func TestMatchesVitessDescriptors(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Fatal("protoc not installed: apt-get install protobuf-compiler (make interop does)")
	}
	dir := os.Getenv("TABLETD_VITESS_PROTO_DIR")
	if dir == "" {
		// Reading Vitess's sources for a check is not depending on them: nothing is imported.
		out, err := exec.Command("go", "mod", "download", "-json", "vitess.io/vitess@"+vitessVersion).Output()
		if err != nil {
			t.Fatalf("go mod download vitess.io/vitess@%s: %v", vitessVersion, err)
		}
		var mod struct{ Dir string }
		if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
			t.Fatalf("go mod download gave no directory: %v %s", err, out)
		}
		dir = filepath.Join(mod.Dir, "proto")
	}
	if _, err := os.Stat(filepath.Join(dir, "query.proto")); err != nil {
		t.Fatalf("Vitess %s protos not found in %s (set TABLETD_VITESS_PROTO_DIR)", vitessVersion, dir)
	}

	ours := []protoreflect.FileDescriptor{
		vtrpcpb.File_vtrpc_proto, vttimepb.File_vttime_proto, topodatapb.File_topodata_proto,
		vschemapb.File_vschema_proto, querypb.File_query_proto, queryservicepb.File_queryservice_proto,
		logutilpb.File_logutil_proto, replicationdatapb.File_replicationdata_proto,
		tabletmanagerdatapb.File_tabletmanagerdata_proto, tabletmanagerservicepb.File_tabletmanagerservice_proto,
		tableaclpb.File_tableacl_proto, binlogdatapb.File_binlogdata_proto,
	}
	set := filepath.Join(t.TempDir(), "vitess.pb")
	args := []string{"-I", dir, "--include_imports", "--descriptor_set_out=" + set}
	for _, f := range ours {
		args = append(args, f.Path())
	}
	if out, err := exec.Command(protoc, args...).CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(set)
	if err != nil {
		t.Fatal(err)
	}
	var fds descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &fds); err != nil {
		t.Fatal(err)
	}
	vitess, err := protodesc.NewFiles(&fds)
	if err != nil {
		t.Fatal(err)
	}

	c := &descCompare{t: t, omitted: map[protoreflect.FullName]bool{}}
	for n := range omittedOther {
		c.omitted[n] = true
	}
	for _, of := range ours {
		vf, err := vitess.FindFileByPath(of.Path())
		if err != nil {
			t.Errorf("%s: not a Vitess file: %v", of.Path(), err)
			continue
		}
		if of.Package() != vf.Package() {
			t.Errorf("%s: package %s, Vitess has %s", of.Path(), of.Package(), vf.Package())
		}
		for i := 0; i < vf.Services().Len(); i++ {
			for ms, j := vf.Services().Get(i).Methods(), 0; j < ms.Len(); j++ {
				if m := ms.Get(j); omittedMethods[m.FullName()] {
					c.omitted[m.FullName()] = true
					c.omitted[m.Input().FullName()] = true
					c.omitted[m.Output().FullName()] = true
				}
			}
		}
	}
	for _, of := range ours {
		if vf, err := vitess.FindFileByPath(of.Path()); err == nil {
			c.types(of.Messages(), vf.Messages(), of.Enums(), vf.Enums())
			c.services(of.Services(), vf.Services())
		}
	}
}

type descCompare struct {
	t       *testing.T
	omitted map[protoreflect.FullName]bool
}

func (c *descCompare) missing(what string, name protoreflect.FullName) {
	if !c.omitted[name] {
		c.t.Errorf("%s %s exists in Vitess but not here (add it, or list it as omitted)", what, name)
	}
}

func (c *descCompare) types(om, vm protoreflect.MessageDescriptors, oe, ve protoreflect.EnumDescriptors) {
	for i := 0; i < vm.Len(); i++ {
		v := vm.Get(i)
		if v.IsMapEntry() {
			continue
		}
		if o := om.ByName(v.Name()); o != nil {
			c.message(o, v)
		} else {
			c.missing("message", v.FullName())
		}
	}
	for i := 0; i < om.Len(); i++ {
		if vm.ByName(om.Get(i).Name()) == nil {
			c.t.Errorf("message %s does not exist in Vitess", om.Get(i).FullName())
		}
	}
	for i := 0; i < ve.Len(); i++ {
		v := ve.Get(i)
		o := oe.ByName(v.Name())
		if o == nil {
			c.missing("enum", v.FullName())
			continue
		}
		if got, want := enumSig(o), enumSig(v); got != want {
			c.t.Errorf("enum %s:\n got  %s\n want %s", v.FullName(), got, want)
		}
	}
	for i := 0; i < oe.Len(); i++ {
		if ve.ByName(oe.Get(i).Name()) == nil {
			c.t.Errorf("enum %s does not exist in Vitess", oe.Get(i).FullName())
		}
	}
}

func (c *descCompare) message(o, v protoreflect.MessageDescriptor) {
	var gotOrder, wantOrder []protoreflect.FieldNumber
	for i := 0; i < v.Fields().Len(); i++ {
		vf := v.Fields().Get(i)
		of := o.Fields().ByNumber(vf.Number())
		if of == nil {
			c.missing("field", vf.FullName())
			continue
		}
		wantOrder = append(wantOrder, vf.Number())
		if got, want := fieldSig(of), fieldSig(vf); got != want {
			c.t.Errorf("field %s:\n got  %s\n want %s", vf.FullName(), got, want)
		}
	}
	for i := 0; i < o.Fields().Len(); i++ {
		of := o.Fields().Get(i)
		gotOrder = append(gotOrder, of.Number())
		if v.Fields().ByNumber(of.Number()) == nil {
			c.t.Errorf("field %s (#%d) does not exist in Vitess", of.FullName(), of.Number())
		}
	}
	if fmt.Sprint(gotOrder) != fmt.Sprint(wantOrder) {
		c.t.Errorf("%s declares fields in order %v, Vitess in %v (text/JSON output order follows it)", o.FullName(), gotOrder, wantOrder)
	}
	if got, want := ranges(o.ReservedRanges()), ranges(v.ReservedRanges()); got != want {
		c.t.Errorf("%s reserves %s, Vitess reserves %s", o.FullName(), got, want)
	}
	c.types(o.Messages(), v.Messages(), o.Enums(), v.Enums())
}

func (c *descCompare) services(os_, vs protoreflect.ServiceDescriptors) {
	for i := 0; i < vs.Len(); i++ {
		v := vs.Get(i)
		o := os_.ByName(v.Name())
		if o == nil {
			c.missing("service", v.FullName())
			continue
		}
		for j := 0; j < v.Methods().Len(); j++ {
			vm := v.Methods().Get(j)
			om := o.Methods().ByName(vm.Name())
			if om == nil {
				c.missing("method", vm.FullName())
				continue
			}
			if got, want := methodSig(om), methodSig(vm); got != want {
				c.t.Errorf("method %s:\n got  %s\n want %s", vm.FullName(), got, want)
			}
		}
		for j := 0; j < o.Methods().Len(); j++ {
			if v.Methods().ByName(o.Methods().Get(j).Name()) == nil {
				c.t.Errorf("method %s does not exist in Vitess", o.Methods().Get(j).FullName())
			}
		}
	}
	for i := 0; i < os_.Len(); i++ {
		if vs.ByName(os_.Get(i).Name()) == nil {
			c.t.Errorf("service %s does not exist in Vitess", os_.Get(i).FullName())
		}
	}
}

func fieldSig(f protoreflect.FieldDescriptor) string {
	s := fmt.Sprintf("%d %s json=%s %v %v packed=%v presence=%v", f.Number(), f.Name(), f.JSONName(), f.Cardinality(), f.Kind(), f.IsPacked(), f.HasPresence())
	if f.IsMap() {
		s += fmt.Sprintf(" map<%v, %s>", f.MapKey().Kind(), typeName(f.MapValue()))
	} else {
		s += " " + typeName(f)
	}
	if o := f.ContainingOneof(); o != nil {
		s += fmt.Sprintf(" oneof=%s synthetic=%v", o.Name(), o.IsSynthetic())
	}
	return s
}

func typeName(f protoreflect.FieldDescriptor) string {
	switch {
	case f.Message() != nil:
		return string(f.Message().FullName())
	case f.Enum() != nil:
		return string(f.Enum().FullName())
	}
	return f.Kind().String()
}

func enumSig(e protoreflect.EnumDescriptor) string {
	var parts []string
	for i := 0; i < e.Values().Len(); i++ {
		parts = append(parts, fmt.Sprintf("%s=%d", e.Values().Get(i).Name(), e.Values().Get(i).Number()))
	}
	return strings.Join(parts, " ")
}

func methodSig(m protoreflect.MethodDescriptor) string {
	return fmt.Sprintf("(clientStream=%v %s) returns (serverStream=%v %s)", m.IsStreamingClient(), m.Input().FullName(), m.IsStreamingServer(), m.Output().FullName())
}

func ranges(r protoreflect.FieldRanges) string {
	var s []string
	for i := 0; i < r.Len(); i++ {
		s = append(s, fmt.Sprintf("%d-%d", r.Get(i)[0], r.Get(i)[1]-1))
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}
