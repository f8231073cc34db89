// Package helm_test checks deploy/helm the way the official nats chart tests itself:
// render with Helm's Go SDK for a few value sets, decode every object strictly into its
// Kubernetes type, and assert what matters. No Kubernetes API is reached.
package helm_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

const chartDir = "fieldstream"

// valueSets are the configurations the chart is rendered with.
var valueSets = []struct {
	name   string
	values string
	// want: what the values should produce
	deployments []string // by component
	monitoring  bool
}{
	{
		name:        "defaults",
		values:      "",
		deployments: []string{"gateway", "assets", "workorders", "payroll", "dashboard"},
	},
	{
		name: "production",
		values: `
image: {registry: registry.example.com/, tag: v1.2.3}
nats: {tls: {clientSecret: fieldstream-nats-client}}
gateway: {replicas: 3, args: [-tenant-rate, "500"]}
consumers: {workorders: {replicas: 4}}
poller: {tenants: [acme, northwind]}
tracing: {otlpEndpoint: "http://otel-collector.observability:4318"}
monitoring: {podMonitor: {enabled: true, labels: {release: prom}}, prometheusRule: {enabled: true}, grafanaDashboard: {enabled: true}}
`,
		deployments: []string{"gateway", "assets", "workorders", "payroll", "dashboard", "poller-acme", "poller-northwind"},
		monitoring:  true,
	},
	{
		name: "minimal",
		values: `
setup: {enabled: false}
dashboard: {enabled: false}
consumers: {payroll: {enabled: false}}
gateway: {replicas: 1, preStopSleepSeconds: 0}
`,
		deployments: []string{"gateway", "assets", "workorders"},
	},
}

// natsUsers are the NATS user each component connects as.
func natsUser(component string) string {
	switch {
	case strings.HasPrefix(component, "poller-"):
		return "poller"
	case component == "dashboard":
		return "admin"
	}
	return component
}

func binaryOf(component string) string {
	switch {
	case strings.HasPrefix(component, "poller-"):
		return "poller"
	case component == "dashboard":
		return "fsctl"
	}
	return component
}

func TestChartRenders(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			r := render(t, chartDir, "fs", "fieldstream", []string{writeValues(t, vs.values)})
			var got []string
			for name := range r.Deployments {
				got = append(got, strings.TrimPrefix(name, "fs-fieldstream-"))
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(vs.deployments))
			if !slices.Equal(got, want) {
				t.Fatalf("deployments %v, want %v", got, want)
			}
			for name, d := range r.Deployments {
				component := strings.TrimPrefix(name, "fs-fieldstream-")
				checkDeployment(t, vs.values, component, d)
				checkPDB(t, r, component, d)
			}
			checkGatewayService(t, r)
			checkSetupJob(t, r, !strings.Contains(vs.values, "setup: {enabled: false}"))
			checkMonitoring(t, r, vs.monitoring)
		})
	}
}

// checkDeployment asserts what every service's pods must have: the image, the probes on
// the port its listen address names, a security context that is non-root and read-only,
// resources and Go's memory limit, graceful drain within the grace period, and exactly
// its own NATS credentials.
func checkDeployment(t *testing.T, values, component string, d *appsv1.Deployment) {
	t.Helper()
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers", component, len(pod.Containers))
	}
	c := pod.Containers[0]
	binary, user := binaryOf(component), natsUser(component)
	wantImage := "fieldstream/" + binary + ":0.1.0"
	if strings.Contains(values, "registry.example.com") {
		wantImage = "registry.example.com/fieldstream/" + binary + ":v1.2.3"
	}
	if c.Image != wantImage {
		t.Errorf("%s: image %s, want %s", component, c.Image, wantImage)
	}
	sel, err := labels.ValidatedSelectorFromSet(d.Spec.Selector.MatchLabels)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("%s: selector %v does not select its pods %v", component, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}

	// Probes: HTTP (a scratch image has nothing to exec), on the port the binary listens on.
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" {
		t.Fatalf("%s: ports %v, want one named http", component, c.Ports)
	}
	port := c.Ports[0].ContainerPort
	env := envOf(c)
	addrVar := map[string]string{"gateway": "FS_HTTP_ADDR"}[component]
	if addrVar == "" && binary != "fsctl" {
		addrVar = "FS_METRICS_ADDR"
	}
	if addrVar != "" {
		if got, want := env[addrVar].Value, "0.0.0.0:"+itoa(port); got != want {
			t.Errorf("%s: %s=%q, but the probes and port name %s", component, addrVar, got, want)
		}
	} else if !slices.Contains(c.Args, "--addr=0.0.0.0:"+itoa(port)) {
		t.Errorf("%s: args %v do not listen on the probed port %d", component, c.Args, port)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"startup", c.StartupProbe, "/healthz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", component, p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s: %s probe %s on %s, want %s on http", component, p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}

	// Non-root, read-only, no privilege, no API token.
	psc, csc := pod.SecurityContext, c.SecurityContext
	switch {
	case psc == nil || csc == nil:
		t.Fatalf("%s: no security context", component)
	case psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot, psc.RunAsUser == nil || *psc.RunAsUser == 0:
		t.Errorf("%s: pod may run as root: %s", component, describe(psc))
	case csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem:
		t.Errorf("%s: root file system writable", component)
	case csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation:
		t.Errorf("%s: privilege escalation allowed", component)
	case csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL"):
		t.Errorf("%s: capabilities not dropped", component)
	case psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("%s: no RuntimeDefault seccomp profile", component)
	case pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken:
		t.Errorf("%s: mounts a service account token it never uses", component)
	}

	// Resources, and Go's memory limit from them.
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("%s: resources %s", component, describe(c.Resources))
	}
	if e := env["GOMEMLIMIT"]; e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil || e.ValueFrom.ResourceFieldRef.Resource != "limits.memory" {
		t.Errorf("%s: GOMEMLIMIT is not the memory limit", component)
	}

	// Graceful drain: SIGTERM comes after the preStop sleep; the process then finishes its
	// HTTP requests (at most 10 s) and its batch in hand, and drains NATS, all within the
	// grace period.
	grace := int64(30)
	if pod.TerminationGracePeriodSeconds != nil {
		grace = *pod.TerminationGracePeriodSeconds
	}
	var sleep int64
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Exec != nil {
			t.Errorf("%s: preStop is not a sleep action (a scratch image has nothing to exec)", component)
		} else {
			sleep = c.Lifecycle.PreStop.Sleep.Seconds
		}
	}
	if component == "gateway" && sleep == 0 && !strings.Contains(values, "preStopSleepSeconds: 0") {
		t.Errorf("gateway: no preStop sleep: it would stop answering before its endpoints are removed")
	}
	if min := sleep + 10 + 5; grace < min {
		t.Errorf("%s: terminationGracePeriodSeconds %d < preStop %d s + HTTP shutdown 10 s + drain 5 s", component, grace, sleep)
	}

	// NATS: its own nkey seed only, its own inbox prefix, TLS verified with the CA.
	var nkeyVol *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == "nkey" {
			nkeyVol = &pod.Volumes[i]
		}
	}
	if nkeyVol == nil || nkeyVol.Secret == nil || len(nkeyVol.Secret.Items) != 1 || nkeyVol.Secret.Items[0].Key != user+".nk" {
		t.Errorf("%s: nkey volume %s, want exactly %s.nk of the nkeys Secret", component, describe(nkeyVol), user)
	} else if m := *nkeyVol.Secret.DefaultMode; m&0o007 != 0 {
		t.Errorf("%s: nkey seed readable by others (mode %o)", component, m)
	}
	natsURL, nkeyFile, caFile := env["FS_NATS_URL"].Value, env["FS_NATS_NKEY"].Value, env["FS_NATS_TLS_CA"].Value
	if binary == "fsctl" {
		natsURL, nkeyFile, caFile = env["NATS_URL"].Value, env["NATS_NKEY"].Value, env["NATS_CA"].Value
	} else if env["FS_NATS_INBOX_PREFIX"].Value != "_INBOX_"+user {
		t.Errorf("%s: inbox prefix %q, want _INBOX_%s (the server lets each user subscribe to its own only)", component, env["FS_NATS_INBOX_PREFIX"].Value, user)
	}
	if !strings.HasPrefix(natsURL, "tls://") || nkeyFile != "/etc/fieldstream/nkeys/"+user+".nk" || !mounted(c, caFile) || !mounted(c, nkeyFile) {
		t.Errorf("%s: NATS url %q nkey %q ca %q: want TLS and the mounted files of user %s", component, natsURL, nkeyFile, caFile, user)
	}
	if strings.Contains(values, "clientSecret: fieldstream-nats-client") && binary != "fsctl" && !mounted(c, env["FS_NATS_TLS_CERT"].Value) {
		t.Errorf("%s: client certificate not mounted", component)
	}
	if binary != "gateway" && binary != "fsctl" {
		if e := env["FS_SERVICETRADE_CLIENT_SECRET"]; e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("%s: ServiceTrade client secret not from a Secret", component)
		}
	}
	if component == "gateway" && !slices.Contains(c.Args, "-apply-streams=false") {
		t.Errorf("gateway: args %v: the gateway's user may not create streams; fsctl setup does", c.Args)
	}
	if strings.HasPrefix(component, "poller-") {
		if env["FS_TENANT"].Value != strings.TrimPrefix(component, "poller-") || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("%s: tenant %q replicas %d strategy %s: want its tenant, one replica, never two at once", component, env["FS_TENANT"].Value, *d.Spec.Replicas, d.Spec.Strategy.Type)
		}
	}
	if strings.Contains(values, "otlpEndpoint") != (env["OTEL_EXPORTER_OTLP_ENDPOINT"].Value != "") {
		t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT=%q", component, env["OTEL_EXPORTER_OTLP_ENDPOINT"].Value)
	}
	if component == "workorders" && strings.Contains(values, "replicas: 4") && *d.Spec.Replicas != 4 {
		t.Errorf("workorders: %d replicas, want the 4 of its values", *d.Spec.Replicas)
	}
}

// mounted reports whether path lies under one of c's volume mounts.
func mounted(c corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if path != "" && strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return true
		}
	}
	return false
}

// checkPDB: every service of more than one replica has a PodDisruptionBudget that selects
// its pods and lets at most one go at a time; none selects another's pods.
func checkPDB(t *testing.T, r *rendered, component string, d *appsv1.Deployment) {
	t.Helper()
	var found int
	for name, pdb := range r.PDBs {
		sel, err := labels.ValidatedSelectorFromSet(pdb.Spec.Selector.MatchLabels)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			continue
		}
		found++
		if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("%s: %s", name, describe(pdb.Spec))
		}
	}
	switch {
	case found > 1:
		t.Errorf("%s: %d PodDisruptionBudgets select its pods", component, found)
	case found == 0 && *d.Spec.Replicas > 1:
		t.Errorf("%s: %d replicas and no PodDisruptionBudget", component, *d.Spec.Replicas)
	}
}

func checkGatewayService(t *testing.T, r *rendered) {
	t.Helper()
	svc := r.Services["fs-fieldstream-gateway"]
	gw := r.Deployments["fs-fieldstream-gateway"]
	if svc == nil || gw == nil {
		t.Fatal("no gateway Service or Deployment")
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(gw.Spec.Template.Labels)) {
		t.Errorf("gateway Service selects %v, not the gateway's pods", svc.Spec.Selector)
	}
	for other, d := range r.Deployments {
		if other != "fs-fieldstream-gateway" && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("gateway Service also selects %s", other)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("gateway Service ports %s", describe(svc.Spec.Ports))
	}
}

// checkSetupJob: the streams are applied by the admin before the services start, as a
// hook of every install and upgrade.
func checkSetupJob(t *testing.T, r *rendered, enabled bool) {
	t.Helper()
	job := r.Jobs["fs-fieldstream-setup"]
	if !enabled {
		if job != nil {
			t.Error("setup Job rendered while disabled")
		}
		return
	}
	if job == nil || !r.Hooks["Job/fs-fieldstream-setup"] {
		t.Fatal("no setup Job hook")
	}
	if h := job.Annotations["helm.sh/hook"]; !strings.Contains(h, "pre-install") || !strings.Contains(h, "pre-upgrade") {
		t.Errorf("setup Job hook %q: the streams must exist before the services start", h)
	}
	c := job.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"setup", "--replicas=3"}) || envOf(c)["NATS_NKEY"].Value != "/etc/fieldstream/nkeys/admin.nk" {
		t.Errorf("setup Job: args %v, nkey %q", c.Args, envOf(c)["NATS_NKEY"].Value)
	}
}

// checkMonitoring: the PodMonitor scrapes every service's pods on their http port, the
// PrometheusRule carries the rules of files/ (promtool-tested), the board is valid JSON.
func checkMonitoring(t *testing.T, r *rendered, enabled bool) {
	t.Helper()
	if !enabled {
		if len(r.PodMonitors)+len(r.PrometheusRules) > 0 {
			t.Error("monitoring resources rendered while disabled")
		}
		return
	}
	pm := r.PodMonitors["fs-fieldstream"]
	if pm == nil {
		t.Fatal("no PodMonitor")
	}
	if pm.Labels["release"] != "prom" {
		t.Errorf("PodMonitor labels %v: the values' labels are missing", pm.Labels)
	}
	sel, err := metaSelector(pm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range r.Deployments {
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("PodMonitor does not scrape %s", name)
		}
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 || pm.Spec.PodMetricsEndpoints[0].Port == nil || *pm.Spec.PodMetricsEndpoints[0].Port != "http" {
		t.Errorf("PodMonitor endpoints %s", describe(pm.Spec.PodMetricsEndpoints))
	}
	pr := r.PrometheusRules["fs-fieldstream"]
	if pr == nil {
		t.Fatal("no PrometheusRule")
	}
	raw, err := os.ReadFile(chartDir + "/files/prometheus-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var want monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict(raw, &want); err != nil {
		t.Fatalf("files/prometheus-rules.yml: %v", err)
	}
	if describe(want) != describe(pr.Spec) {
		t.Errorf("PrometheusRule differs from files/prometheus-rules.yml")
	}
	cm := r.ConfigMaps["fs-fieldstream-grafana-dashboard"]
	if cm == nil || cm.Labels["grafana_dashboard"] != "1" {
		t.Fatal("no Grafana dashboard ConfigMap labelled for the sidecar")
	}
	var board map[string]any
	if err := json.Unmarshal([]byte(cm.Data["fieldstream.json"]), &board); err != nil {
		t.Errorf("Grafana dashboard: %v", err)
	}
}

func itoa(i int32) string { b, _ := json.Marshal(i); return string(b) }

func metaSelector(s metav1.LabelSelector) (labels.Selector, error) { return metav1.LabelSelectorAsSelector(&s) }
