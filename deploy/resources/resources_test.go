package resources_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	"sigs.k8s.io/yaml"

	"github.com/fieldstream/fieldstream/deploy/resources"
)

const (
	streamsDir = "../../streams"
	deployDir  = ".."
)

func definitions(t *testing.T) []resources.Definition {
	t.Helper()
	defs, err := resources.Load(streamsDir)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[resources.Kind]int{}
	for _, d := range defs {
		kinds[d.Kind]++
	}
	if kinds[resources.Stream] < 2 || kinds[resources.Consumer] < 3 || kinds[resources.Bucket] < 2 {
		t.Fatalf("definitions by kind %v: streams/ should hold EVENTS, DLQ, three consumers and the shared buckets", kinds)
	}
	return defs
}

// TestGeneratedFilesAreCurrent: the committed NACK and Terraform files are what `make
// resources` writes from streams/ now.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	files, err := resources.Files(streamsDir, resources.ClusterReplicas)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(deployDir, name))
		if err != nil {
			t.Fatalf("%v (run make resources)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("deploy/%s differs from what streams/ defines: run make resources", name)
		}
	}
}

// The NACK custom resources' fields as NACK's API (jetstream.nats.io/v1beta2) names
// them: decoding strictly into these refuses any field NACK does not know.
type (
	nackObject struct {
		APIVersion string          `json:"apiVersion"`
		Kind       string          `json:"kind"`
		Metadata   nackMeta        `json:"metadata"`
		Spec       json.RawMessage `json:"spec"`
	}
	nackMeta struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	}
	nackBase struct {
		PreventDelete bool `json:"preventDelete"`
		PreventUpdate bool `json:"preventUpdate"`
	}
	nackStream struct {
		Name               string            `json:"name"`
		Description        string            `json:"description"`
		Subjects           []string          `json:"subjects"`
		Retention          string            `json:"retention"`
		MaxConsumers       int               `json:"maxConsumers"`
		MaxMsgsPerSubject  int               `json:"maxMsgsPerSubject"`
		MaxMsgs            int               `json:"maxMsgs"`
		MaxBytes           int               `json:"maxBytes"`
		MaxAge             string            `json:"maxAge"`
		MaxMsgSize         int               `json:"maxMsgSize"`
		Storage            string            `json:"storage"`
		Discard            string            `json:"discard"`
		DiscardPerSubject  bool              `json:"discardPerSubject"`
		Replicas           int               `json:"replicas"`
		DuplicateWindow    string            `json:"duplicateWindow"`
		AllowDirect        bool              `json:"allowDirect"`
		AllowRollup        bool              `json:"allowRollup"`
		AllowMsgTTL        bool              `json:"allowMsgTtl"`
		AllowAtomicPublish bool              `json:"allowAtomicPublish"`
		DenyDelete         bool              `json:"denyDelete"`
		DenyPurge          bool              `json:"denyPurge"`
		Compression        string            `json:"compression"`
		PersistMode        string            `json:"persistMode"`
		Metadata           map[string]string `json:"metadata"`
		nackBase
	}
	nackConsumer struct {
		Description       string            `json:"description"`
		AckPolicy         string            `json:"ackPolicy"`
		AckWait           string            `json:"ackWait"`
		DeliverPolicy     string            `json:"deliverPolicy"`
		DurableName       string            `json:"durableName"`
		FilterSubject     string            `json:"filterSubject"`
		FilterSubjects    []string          `json:"filterSubjects"`
		MaxAckPending     int               `json:"maxAckPending"`
		MaxDeliver        int               `json:"maxDeliver"`
		MaxWaiting        int               `json:"maxWaiting"`
		ReplayPolicy      string            `json:"replayPolicy"`
		HeadersOnly       bool              `json:"headersOnly"`
		InactiveThreshold string            `json:"inactiveThreshold"`
		Replicas          int               `json:"replicas"`
		MemStorage        bool              `json:"memStorage"`
		Metadata          map[string]string `json:"metadata"`
		StreamName        string            `json:"streamName"`
		nackBase
	}
	nackKeyValue struct {
		Bucket       string `json:"bucket"`
		Description  string `json:"description"`
		MaxValueSize int    `json:"maxValueSize"`
		History      int    `json:"history"`
		TTL          string `json:"ttl"`
		MaxBytes     int    `json:"maxBytes"`
		Storage      string `json:"storage"`
		Replicas     int    `json:"replicas"`
		nackBase
	}
)

// TestNACKMatchesDefinitions reads deploy/nack/ as Kubernetes would get it and checks,
// field by field, that every resource says what its definition in streams/ says (at the
// cluster's replicas), that it has no field the definition lacks, and that no definition
// is missing or extra.
func TestNACKMatchesDefinitions(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(deployDir, resources.NACKFile))
	if err != nil {
		t.Fatal(err)
	}
	objects := map[string]map[string]any{} // kind/spec name → spec
	for i, doc := range strings.Split(string(raw), "\n---\n") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var obj nackObject
		if err := yaml.UnmarshalStrict([]byte(doc), &obj); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		if obj.APIVersion != resources.NACKAPIVersion {
			t.Errorf("%s %s: apiVersion %q", obj.Kind, obj.Metadata.Name, obj.APIVersion)
		}
		var typed any
		var name string
		switch obj.Kind {
		case "Stream":
			s := &nackStream{}
			typed, name = s, "stream"
		case "Consumer":
			typed, name = &nackConsumer{}, "consumer"
		case "KeyValue":
			typed, name = &nackKeyValue{}, "bucket"
		default:
			t.Fatalf("document %d: kind %q", i, obj.Kind)
		}
		if err := yaml.UnmarshalStrict(obj.Spec, typed); err != nil {
			t.Errorf("%s %s: spec has a field NACK does not know: %v", obj.Kind, obj.Metadata.Name, err)
		}
		var spec map[string]any
		if err := json.Unmarshal(obj.Spec, &spec); err != nil {
			t.Fatal(err)
		}
		key := name + "/" + specName(spec)
		if _, dup := objects[key]; dup {
			t.Errorf("%s defined twice", key)
		}
		objects[key] = spec
		if strings.ToLower(obj.Metadata.Name) != obj.Metadata.Name || obj.Metadata.Labels["app.kubernetes.io/part-of"] != "fieldstream" {
			t.Errorf("%s: metadata %+v", key, obj.Metadata)
		}
	}
	for _, d := range definitions(t) {
		d = d.WithReplicas(resources.ClusterReplicas)
		key := string(d.Kind) + "/" + d.Name
		spec, ok := objects[key]
		if !ok {
			t.Errorf("%s (%s) has no NACK resource", key, d.Source)
			continue
		}
		delete(objects, key)
		seen := map[string]bool{}
		for _, k := range d.Keys() {
			f, _ := resources.FieldOf(d.Kind, k)
			seen[f.NACK] = true
			got, ok := spec[f.NACK]
			if !ok {
				t.Errorf("%s: %s (%s in the definition) missing", key, f.NACK, k)
				continue
			}
			if f.Conv == resources.Duration {
				compareDuration(t, key+" "+f.NACK, d.Fields[k], got)
				continue
			}
			compareJSON(t, key+" "+f.NACK, d.Fields[k], got)
		}
		switch d.Kind {
		case resources.Consumer:
			seen["streamName"] = true
			if spec["streamName"] != d.Stream {
				t.Errorf("%s: streamName %v, want %s", key, spec["streamName"], d.Stream)
			}
		default:
			seen["preventDelete"] = true
			if spec["preventDelete"] != true {
				t.Errorf("%s: preventDelete is not set: deleting the resource would delete its data", key)
			}
		}
		for k := range spec {
			if !seen[k] {
				t.Errorf("%s: %s is set, but the definition has no such field", key, k)
			}
		}
	}
	for key := range objects {
		t.Errorf("NACK resource %s has no definition in streams/", key)
	}
}

func specName(spec map[string]any) string {
	for _, k := range []string{"name", "durableName", "bucket"} {
		if s, ok := spec[k].(string); ok {
			return s
		}
	}
	return ""
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// compareJSON fails unless want and got say the same as JSON.
func compareJSON(t *testing.T, what string, want, got any) {
	t.Helper()
	w, _ := json.Marshal(want)
	g, _ := json.Marshal(got)
	if !jsonEqual(w, g) {
		t.Errorf("%s = %s, the definition says %s", what, g, w)
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

func compareDuration(t *testing.T, what string, wantNS, got any) {
	t.Helper()
	n, err := wantNS.(json.Number).Int64()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	s, _ := got.(string)
	d, err := time.ParseDuration(s)
	if err != nil || d != time.Duration(n) {
		t.Errorf("%s = %v, the definition says %v", what, got, time.Duration(n))
	}
}

// tfAttributes are the attributes the nats-io/jetstream provider documents for each
// resource type that fieldstream's definitions may use; any other is a mistake.
var tfAttributes = map[string][]string{
	"jetstream_stream": {"name", "description", "subjects", "retention", "max_consumers", "max_msgs", "max_bytes", "max_age",
		"max_msgs_per_subject", "max_msg_size", "discard", "discard_new_per_subject", "storage", "replicas", "duplicate_window",
		"allow_direct", "allow_atomic", "allow_rollup_hdrs", "allow_msg_ttl", "deny_delete", "deny_purge", "compression",
		"persist_mode", "metadata"},
	"jetstream_consumer": {"stream_id", "durable_name", "description", "deliver_all", "deliver_last", "ack_policy", "ack_wait",
		"max_delivery", "filter_subject", "filter_subjects", "replay_policy", "max_ack_pending", "max_waiting",
		"inactive_threshold", "replicas", "memory", "headers_only", "metadata"},
	"jetstream_kv_bucket": {"name", "description", "history", "ttl", "max_bucket_size", "max_value_size", "storage", "replicas"},
}

// TestTerraformMatchesDefinitions parses the module's resources with HCL and checks,
// field by field, that each resource says what its definition says (with var.replicas at
// the definition's own replicas), uses only attributes the provider documents, and that no
// definition is missing or extra.
func TestTerraformMatchesDefinitions(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(deployDir, resources.TerraformFile))
	if err != nil {
		t.Fatal(err)
	}
	file, diags := hclsyntax.ParseConfig(src, resources.TerraformFile, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	defs := definitions(t)
	streamIDs := map[string]cty.Value{}
	for _, d := range defs {
		if d.Kind == resources.Stream {
			streamIDs[d.TFName()] = cty.ObjectVal(map[string]cty.Value{"id": cty.StringVal(d.Name)})
		}
	}
	type block struct {
		body  *hclsyntax.Body
		typ   string
		found bool
	}
	blocks := map[string]*block{}
	for _, b := range file.Body.(*hclsyntax.Body).Blocks {
		switch b.Type {
		case "resource":
			if len(b.Labels) != 2 {
				t.Fatalf("resource with labels %v", b.Labels)
			}
			blocks[b.Labels[0]+"."+b.Labels[1]] = &block{body: b.Body, typ: b.Labels[0]}
		case "output":
		default:
			t.Errorf("unexpected %s block", b.Type)
		}
	}
	for _, d := range defs {
		r := 0
		if n, ok := d.Fields["num_replicas"].(json.Number); ok {
			i, _ := n.Int64()
			r = int(i)
		}
		ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
			"var":              cty.ObjectVal(map[string]cty.Value{"replicas": cty.NumberIntVal(int64(r))}),
			"jetstream_stream": cty.ObjectVal(streamIDs),
		}}
		key := resources.TFResourceType(d.Kind) + "." + d.TFName()
		b, ok := blocks[key]
		if !ok {
			t.Errorf("%s (%s) has no Terraform resource %s", d.Kind, d.Name, key)
			continue
		}
		b.found = true
		attrs := b.body.Attributes
		for name := range attrs {
			if !slices.Contains(tfAttributes[b.typ], name) {
				t.Errorf("%s: attribute %s is not one the provider documents for %s", key, name, b.typ)
			}
		}
		eval := func(name string) (cty.Value, bool) {
			a, ok := attrs[name]
			if !ok {
				return cty.NilVal, false
			}
			v, diags := a.Expr.Value(ctx)
			if diags.HasErrors() {
				t.Fatalf("%s.%s: %v", key, name, diags)
			}
			return v, true
		}
		seen := map[string]bool{}
		if d.Kind == resources.Consumer {
			seen["stream_id"] = true
			if v, ok := eval("stream_id"); !ok || v != cty.StringVal(d.Stream) {
				t.Errorf("%s: stream_id is not jetstream_stream.%s.id", key, d.Stream)
			}
		}
		for _, k := range d.Keys() {
			f, _ := resources.FieldOf(d.Kind, k)
			attr := f.TF
			if f.Conv == resources.DeliverPolicy {
				if attr, err = f.TFDeliverAttribute(d.Fields[k]); err != nil {
					t.Fatal(err)
				}
			}
			seen[attr] = true
			v, ok := eval(attr)
			if !ok {
				t.Errorf("%s: %s (%s in the definition) missing", key, attr, k)
				continue
			}
			var want any
			switch f.Conv {
			case resources.Duration:
				s, err := f.TFSeconds(d.Fields[k])
				if err != nil {
					t.Fatal(err)
				}
				want = s
			case resources.DeliverPolicy:
				want = true
			case resources.Replicas:
				if tr, ok := attrs[attr].Expr.(*hclsyntax.ScopeTraversalExpr); !ok || tr.Traversal.RootName() != "var" {
					t.Errorf("%s: %s is not var.replicas", key, attr)
				}
				want = d.Fields[k]
			default:
				want = d.Fields[k]
			}
			got, err := ctyjson.Marshal(v, v.Type())
			if err != nil {
				t.Fatal(err)
			}
			w, _ := json.Marshal(want)
			if !jsonEqual(w, got) {
				t.Errorf("%s: %s = %s, the definition says %s = %s", key, attr, got, k, w)
			}
		}
		for name := range attrs {
			if !seen[name] {
				t.Errorf("%s: %s is set, but the definition has no such field", key, name)
			}
		}
		guarded := false
		for _, lb := range b.body.Blocks {
			if lb.Type == "lifecycle" {
				if a, ok := lb.Body.Attributes["prevent_destroy"]; ok {
					v, _ := a.Expr.Value(nil)
					guarded = v == cty.True
				}
			}
		}
		if d.Kind != resources.Consumer && !guarded {
			t.Errorf("%s: no lifecycle { prevent_destroy = true }: terraform destroy would delete its data", key)
		}
	}
	for key, b := range blocks {
		if !b.found {
			t.Errorf("Terraform resource %s has no definition in streams/", key)
		}
	}
}

// TestLoadRefusesUnknownFields: a definition field the table does not carry fails, so a
// new setting in streams/ cannot be left out of the resources unnoticed.
func TestLoadRefusesUnknownFields(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "consumers"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("S.json", `{"name":"S","subjects":["s.>"],"max_age":1000000000}`)
	write("consumers/c.json", `{"durable_name":"c","ack_policy":"explicit"}`)
	if _, err := resources.Load(dir); err != nil {
		t.Fatalf("known fields: %v", err)
	}
	write("S.json", `{"name":"S","subjects":["s.>"],"sources":[{"name":"X"}]}`)
	if _, err := resources.Load(dir); err == nil || !strings.Contains(err.Error(), `"sources"`) {
		t.Fatalf("unknown field: err = %v, want one naming it", err)
	}
	// A duration Terraform cannot state (not whole seconds) is refused, not rounded.
	write("S.json", `{"name":"S","subjects":["s.>"],"max_age":1500000000}`)
	defs, err := resources.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resources.Terraform(defs); err == nil {
		t.Fatal("1.5 s max_age rendered for Terraform; want an error")
	}
}

// TestTerraformFormatted runs `terraform fmt -check` over deploy/terraform where terraform
// is installed. (The provider cannot be fetched here, so `terraform validate` cannot run.)
func TestTerraformFormatted(t *testing.T) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not installed: terraform fmt -check skipped")
	}
	cmd := exec.Command(tf, "fmt", "-check", "-recursive", "-diff", filepath.Join(deployDir, "terraform"))
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("terraform fmt -check: %v\n%s", err, out)
	}
}
