// Package k8s_test checks deploy/k8s's manifests: decoded strictly into the Kubernetes API
// types (an unknown or misspelt field fails), consistent with tabletd's flags, and with
// probes that the real tabletd binary answers.
package k8s_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	gyaml "gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/test/etcdtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// manifests is every object of tablets.yaml, by kind.
type manifests struct {
	configMap corev1.ConfigMap
	secret    corev1.Secret
	service   corev1.Service
	set       appsv1.StatefulSet
	pdb       policyv1.PodDisruptionBudget
}

// decodeStrict decodes one YAML document into its API type; unknown fields are errors.
func decodeStrict(doc []byte, m *manifests) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return err
	}
	var into any
	switch head.APIVersion + " " + head.Kind {
	case "v1 ConfigMap":
		into = &m.configMap
	case "v1 Secret":
		into = &m.secret
	case "v1 Service":
		into = &m.service
	case "apps/v1 StatefulSet":
		into = &m.set
	case "policy/v1 PodDisruptionBudget":
		into = &m.pdb
	default:
		return fmt.Errorf("unexpected object %s %s", head.APIVersion, head.Kind)
	}
	return yaml.UnmarshalStrict(doc, into)
}

func documents(t *testing.T, file string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func load(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{}
	for i, d := range documents(t, "tablets.yaml") {
		if err := decodeStrict(d, m); err != nil {
			t.Fatalf("tablets.yaml document %d: %v", i+1, err)
		}
	}
	if m.set.Name == "" || m.pdb.Name == "" || m.configMap.Name == "" || m.secret.Name == "" || m.service.Name == "" {
		t.Fatal("tablets.yaml lacks one of ConfigMap, Secret, Service, StatefulSet, PodDisruptionBudget")
	}
	return m
}

// TestStrictDecoding: the check fails on a field the API does not have.
func TestStrictDecoding(t *testing.T) {
	for _, d := range documents(t, "testdata/unknown-field.yaml") {
		if err := decodeStrict(d, &manifests{}); err == nil || !strings.Contains(err.Error(), "maxUnavailabel") {
			t.Fatalf("a misspelt field decoded: %v", err)
		}
	}
}

func container(t *testing.T, pod corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range pod.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

// tabletdConfig is the ConfigMap's tabletd.yaml.
func tabletdConfig(t *testing.T, m *manifests) map[string]string {
	t.Helper()
	var cfg map[string]any
	if err := gyaml.Unmarshal([]byte(m.configMap.Data["tabletd.yaml"]), &cfg); err != nil {
		t.Fatalf("ConfigMap tabletd.yaml: %v", err)
	}
	out := map[string]string{}
	for k, v := range cfg {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// TestTabletPod: what the issue asks of the tablet pods.
func TestTabletPod(t *testing.T) {
	m := load(t)
	pod := m.set.Spec.Template.Spec
	td := container(t, pod, "tabletd")
	cfg := tabletdConfig(t, m)
	webPort := 0
	for _, p := range td.Ports {
		if p.Name == "web" {
			webPort = int(p.ContainerPort)
		}
	}
	if strconv.Itoa(webPort) != cfg["port"] {
		t.Errorf("container port web=%d, tabletd --port=%s", webPort, cfg["port"])
	}
	for _, tc := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"startup", td.StartupProbe, "/healthz"},
		{"liveness", td.LivenessProbe, "/healthz"},
		{"readiness", td.ReadinessProbe, "/debug/health"},
	} {
		if tc.probe == nil || tc.probe.HTTPGet == nil {
			t.Errorf("%s probe: want an httpGet", tc.name)
			continue
		}
		if tc.probe.HTTPGet.Path != tc.path || tc.probe.HTTPGet.Port.String() != "web" {
			t.Errorf("%s probe: %s on port %s, want %s on web", tc.name, tc.probe.HTTPGet.Path, tc.probe.HTTPGet.Port.String(), tc.path)
		}
	}
	grace, err := time.ParseDuration(cfg["shutdown-grace-period"])
	if err != nil {
		t.Fatalf("shutdown-grace-period: %v", err)
	}
	lameduck, err := time.ParseDuration(cfg["lameduck-period"])
	if err != nil {
		t.Fatalf("lameduck-period: %v", err)
	}
	var preStop time.Duration
	if td.Lifecycle == nil || td.Lifecycle.PreStop == nil || td.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("tabletd has no preStop sleep")
	}
	preStop = time.Duration(td.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	term := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	// preStop, then lameduck, the drain, the servers' 2 s stops and the topology update.
	if term < preStop+lameduck+grace+10*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v < preStop %v + lameduck-period %v + shutdown-grace-period %v + 10s: the kubelet would SIGKILL a draining tablet", term, preStop, lameduck, grace)
	}
	for _, c := range pod.Containers {
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("container %s has no cpu and memory requests", c.Name)
		}
		for _, a := range append(append([]string{}, c.Command...), c.Args...) {
			if strings.Contains(strings.ToLower(a), "password") {
				t.Errorf("container %s has a password on its command line: %q", c.Name, a)
			}
		}
		for _, e := range c.Env {
			if strings.Contains(strings.ToLower(e.Name), "password") && e.Value != "" && !strings.HasPrefix(e.Value, "/") {
				t.Errorf("container %s has a password in its environment: %s", c.Name, e.Name)
			}
		}
	}
	for k := range cfg {
		if strings.HasSuffix(k, "-password") {
			t.Errorf("the ConfigMap holds a password (%s): passwords come from the Secret", k)
		}
	}
	if !strings.HasPrefix(cfg["db-credentials-file"], "/etc/tabletd/secret/") {
		t.Errorf("db-credentials-file %q is not in the Secret's mount", cfg["db-credentials-file"])
	}
	mounted := map[string]string{}
	for _, v := range td.VolumeMounts {
		mounted[v.Name] = v.MountPath
	}
	if mounted["socket"] == "" || mounted["socket"] != path.Dir(cfg["db-socket"]) {
		t.Errorf("db-socket %s is not in the shared socket volume (mounted at %q)", cfg["db-socket"], mounted["socket"])
	}
	for _, c := range pod.Containers {
		shares := false
		for _, v := range c.VolumeMounts {
			shares = shares || v.Name == "socket"
		}
		if !shares {
			t.Errorf("container %s does not mount the shared socket volume", c.Name)
		}
	}
	sel := m.pdb.Spec.Selector.MatchLabels
	for k, v := range sel {
		if m.set.Spec.Template.Labels[k] != v {
			t.Errorf("the PodDisruptionBudget selects %s=%s, which the tablet pods lack", k, v)
		}
	}
	if m.pdb.Spec.MaxUnavailable == nil || m.pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Error("the PodDisruptionBudget should allow one tablet down at a time")
	}
}

// TestProbesAnswered runs the real tabletd with the ConfigMap's config (and the pod's args,
// the machine-specific values replaced) and GETs each probe: /healthz answers 200 and
// /debug/health answers (503-class "not serving" here: no MySQL), so no probe points at a
// path the binary lacks.
func TestProbesAnswered(t *testing.T) {
	m := load(t)
	td := container(t, m.set.Spec.Template.Spec, "tabletd")
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "tabletd.yaml")
	if err := os.WriteFile(cfgFile, []byte(m.configMap.Data["tabletd.yaml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "credentials.json"), []byte(m.secret.StringData["credentials.json"]), 0o600); err != nil {
		t.Fatal(err)
	}
	etcd := etcdtest.Start(t)
	b, _ := proto.Marshal(&topodatapb.CellInfo{ServerAddress: etcd.Endpoint(), Root: "/vitess/zone1"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := etcd.Client(t).Put(ctx, "/vitess/global/cells/zone1/CellInfo", string(b)); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "tabletd")
	if out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "../../cmd/tabletd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := []string{}
	for _, a := range td.Args {
		if strings.HasPrefix(a, "--config=") {
			a = "--config=" + cfgFile
		}
		args = append(args, strings.NewReplacer("$(POD_INDEX)", "0", "$(POD_NAME)", "tablet-commerce-0-0", "$(POD_NAMESPACE)", "default").Replace(a))
	}
	args = append(args, "--topo-global-server-address", etcd.Endpoint(), "--db-credentials-file", filepath.Join(dir, "credentials.json"),
		"--db-socket", filepath.Join(dir, "no-mysql.sock"), "--tablet-hostname", "127.0.0.1",
		"--bind-address", "127.0.0.1", "--grpc-bind-address", "127.0.0.1", "--port", strconv.Itoa(port), "--grpc-port", "0")
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	get := func(p string) int {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, p))
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(60 * time.Second)
	for get("/healthz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never answered 200; tabletd output:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range []*corev1.Probe{td.StartupProbe, td.LivenessProbe, td.ReadinessProbe} {
		code := get(p.HTTPGet.Path)
		switch {
		case p.HTTPGet.Path == "/healthz" && code != http.StatusOK:
			t.Errorf("%s answered %d, want 200", p.HTTPGet.Path, code)
		case code == 0 || code == http.StatusNotFound:
			t.Errorf("%s: the binary does not serve it (%d)", p.HTTPGet.Path, code)
		}
	}
}
