package helm_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/conf"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/fieldstream/fieldstream/deploy/natsauth"
)

const (
	natsValues     = "nats-values.yaml"
	natsAuthValues = "nats-auth-values.yaml"
	serverConf     = "../" + natsauth.ConfFile
)

// TestNATSAuthValuesAreCurrent: nats-auth-values.yaml is what `make resources` writes from
// deploy/nats-server.conf now.
func TestNATSAuthValuesAreCurrent(t *testing.T) {
	want, err := natsauth.Values(serverConf, natsauth.PublicKeysSecret)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(natsAuthValues)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("deploy/helm/%s differs from deploy/nats-server.conf: run make resources", natsAuthValues)
	}
}

// setNKeys sets a fresh public key for every FS_NKEY_<USER> deploy/nats-server.conf reads.
func setNKeys(t *testing.T) {
	t.Helper()
	src, err := os.ReadFile(serverConf)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range regexp.MustCompile(`\$(FS_NKEY_[A-Z0-9_]+)`).FindAllStringSubmatch(string(src), -1) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		t.Setenv(v[1], pub)
	}
}

// serverAuthorization is deploy/nats-server.conf's authorization, parsed by nats-server.
func serverAuthorization(t *testing.T) map[string]any {
	t.Helper()
	m, err := conf.ParseFile(serverConf)
	if err != nil {
		t.Fatal(err)
	}
	return m["authorization"].(map[string]any)
}

// chartVariable is the nats chart's rule for merge values: a string "<< X >>" is written
// unquoted (a variable reference such as $FS_NKEY_GATEWAY, or a number with units).
var chartVariable = regexp.MustCompile(`"<< *(.*?) *>>"`)

// TestNATSAuthValuesGrantWhatTheServerConfDoes renders the merge block of
// nats-auth-values.yaml as the nats chart does (JSON is NATS configuration; "<< $X >>"
// unquoted) and parses it with nats-server's parser: every user and permission must equal
// deploy/nats-server.conf's, so the cluster on Kubernetes grants what TestSecureDeployment
// proves of the file. (TestOfficialNATSChart checks the chart's whole output where the
// chart is at hand.)
func TestNATSAuthValuesGrantWhatTheServerConfDoes(t *testing.T) {
	setNKeys(t)
	raw, err := os.ReadFile(natsAuthValues)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Config struct {
			Merge map[string]any `json:"merge"`
		} `json:"config"`
		Container struct {
			Env map[string]any `json:"env"`
		} `json:"container"`
	}
	if err := yaml.UnmarshalStrict(raw, &v); err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false) // as the chart writes it: '>' stays '>' (NATS configuration knows no \u escapes)
	if err := enc.Encode(v.Config.Merge); err != nil {
		t.Fatal(err)
	}
	parsed, err := conf.Parse(chartVariable.ReplaceAllString(js.String(), "$1"))
	if err != nil {
		t.Fatalf("the chart's NATS configuration from %s does not parse: %v", natsAuthValues, err)
	}
	got, want := parsed["authorization"], serverAuthorization(t)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("authorization differs from deploy/nats-server.conf:\n got %v\nwant %v", got, want)
	}
	for _, u := range want["users"].([]any) {
		// every user's key is read from the container's environment, filled from the Secret
		key := u.(map[string]any)["nkey"].(string)
		found := false
		for name := range v.Container.Env {
			found = found || os.Getenv(name) == key
		}
		if !found {
			t.Errorf("no container variable holds user key %s", key)
		}
	}
}

// natsChart finds the official nats chart: FIELDSTREAM_NATS_CHART names a chart directory
// (a checkout's helm/charts/nats) or a packaged chart (nats-x.y.z.tgz).
func natsChart(t *testing.T) string {
	t.Helper()
	p := os.Getenv("FIELDSTREAM_NATS_CHART")
	if p == "" {
		t.Skip("the official nats chart is not available here (the Go module proxy does not serve github.com/nats-io/k8s, and no chart repository is reachable): " +
			"set FIELDSTREAM_NATS_CHART to its directory or .tgz (helm pull nats/nats) to render it; its fieldstream values were still checked by TestNATSAuthValuesGrantWhatTheServerConfDoes")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("FIELDSTREAM_NATS_CHART: %v", err)
	}
	return p
}

// TestOfficialNATSChart renders the official nats chart with nats-values.yaml and
// nats-auth-values.yaml and checks the cluster it describes: three nodes, each with a
// JetStream PVC, never more than one down, running fieldstream's nats-server image as a
// non-root user; and the NATS configuration it produces, parsed with nats-server's parser
// and then loaded as a server's options: TLS for clients and routes, JetStream's file store
// fsynced on every write (sync_interval: always), three routes, and exactly the users and
// permissions of deploy/nats-server.conf.
func TestOfficialNATSChart(t *testing.T) {
	chart := natsChart(t)
	setNKeys(t)
	r := render(t, chart, "nats", "nats", []string{natsValues, natsAuthValues})

	sts := r.StatefulSets["nats"]
	if sts == nil {
		t.Fatalf("no StatefulSet nats; rendered %v", keys(r.StatefulSets))
	}
	if *sts.Spec.Replicas != 3 {
		t.Errorf("%d NATS nodes, want 3", *sts.Spec.Replicas)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 || sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().String() != "50Gi" {
		t.Errorf("JetStream PVC %s", describe(sts.Spec.VolumeClaimTemplates))
	}
	pod := sts.Spec.Template.Spec
	var nats *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "nats" {
			nats = &pod.Containers[i]
		}
	}
	if nats == nil {
		t.Fatalf("no nats container in %v", describe(pod.Containers))
	}
	if !strings.HasPrefix(nats.Image, "fieldstream/nats-server:") || len(pod.Containers) != 1 {
		t.Errorf("containers %v: want fieldstream's nats-server image alone (no reloader image to pull)", describe(pod.Containers))
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.FSGroup == nil || *psc.FSGroup != 65532 {
		t.Errorf("pod security context %s: want non-root, the PVC owned by the image's user", describe(psc))
	}
	if l := nats.Lifecycle; l == nil || l.PreStop == nil || l.PreStop.Exec == nil || l.PreStop.Exec.Command[0] != "/nats-server" {
		t.Errorf("preStop %s: the scratch image has nats-server at /nats-server only", describe(l))
	}
	if pdb := r.PDBs["nats"]; pdb == nil || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget %v: at most one node down keeps R3's quorum", describe(r.PDBs))
	}
	for _, e := range nats.Env {
		if strings.HasPrefix(e.Name, "FS_NKEY_") && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != natsauth.PublicKeysSecret) {
			t.Errorf("%s not from Secret %s", e.Name, natsauth.PublicKeysSecret)
		}
	}

	cm := r.ConfigMaps["nats-config"]
	if cm == nil {
		t.Fatalf("no ConfigMap nats-config; rendered %v", keys(r.ConfigMaps))
	}
	dir := t.TempDir()
	confPath := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(confPath, []byte(cm.Data["nats.conf"]), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SERVER_NAME", "nats-0")
	t.Setenv("POD_NAME", "nats-0")
	m, err := conf.ParseFile(confPath)
	if err != nil {
		t.Fatalf("nats-server cannot parse the chart's configuration: %v\n%s", err, cm.Data["nats.conf"])
	}
	js, _ := m["jetstream"].(map[string]any)
	if js["sync_interval"] != "always" || js["store_dir"] != "/data" {
		t.Errorf("jetstream %v: want sync_interval always, store_dir /data", js)
	}
	cluster, _ := m["cluster"].(map[string]any)
	routes, _ := cluster["routes"].([]any)
	if len(routes) != 3 || !strings.HasPrefix(routes[0].(string), "tls://") {
		t.Errorf("cluster routes %v: want three, over TLS", routes)
	}
	if tls, _ := m["tls"].(map[string]any); tls["cert_file"] != "/etc/nats-certs/nats/tls.crt" {
		t.Errorf("client TLS %v", tls)
	}
	if !reflect.DeepEqual(m["authorization"], serverAuthorization(t)) {
		t.Errorf("authorization differs from deploy/nats-server.conf:\n got %v\nwant %v", m["authorization"], serverAuthorization(t))
	}

	// Loaded as a server's options — certificates read, permissions compiled — with the
	// Secrets' mount points moved into a temporary directory holding a test certificate.
	certs := writeTestCerts(t, dir)
	moved := strings.NewReplacer("/etc/nats-certs/", certs+"/", "/data", filepath.Join(dir, "data"), "/var/run/nats/", dir+"/").Replace(cm.Data["nats.conf"])
	if err := os.WriteFile(confPath, []byte(moved), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(confPath)
	if err != nil {
		t.Fatalf("nats-server refuses the chart's configuration: %v", err)
	}
	switch {
	case !opts.SyncAlways:
		t.Error("options: SyncAlways is off")
	case !opts.JetStream:
		t.Error("options: JetStream off")
	case opts.TLSConfig == nil || opts.Cluster.TLSConfig == nil:
		t.Error("options: client or route TLS missing")
	case len(opts.Nkeys) != len(serverAuthorization(t)["users"].([]any)):
		t.Errorf("options: %d nkey users", len(opts.Nkeys))
	case len(opts.Routes) != 3:
		t.Errorf("options: %d routes", len(opts.Routes))
	}
	if _, err := server.NewServer(opts); err != nil {
		t.Errorf("nats-server refuses the options: %v", err)
	}
}

// writeTestCerts writes a self-signed certificate as every TLS Secret the chart mounts
// (nats/, cluster/: tls.crt, tls.key, ca.crt) under dir/certs and returns that directory.
func writeTestCerts(t *testing.T, dir string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats"}, DNSNames: []string{"nats", "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	root := filepath.Join(dir, "certs")
	for _, sub := range []string{"nats", "cluster"} {
		d := filepath.Join(root, sub)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{"tls.crt": certPEM, "ca.crt": certPEM, "tls.key": keyPEM} {
			if err := os.WriteFile(filepath.Join(d, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func keys[T any](m map[string]T) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
