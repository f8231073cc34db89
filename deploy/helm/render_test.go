package helm_test

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// kubeVersion is the Kubernetes the charts are rendered for: the oldest the fieldstream
// chart supports (the preStop sleep action).
var kubeVersion = &chartutil.KubeVersion{Version: "v1.30.0", Major: "1", Minor: "30"}

// rendered is a chart as `helm install --dry-run` renders it, every object decoded
// strictly into its Kubernetes type.
type rendered struct {
	Deployments     map[string]*appsv1.Deployment
	StatefulSets    map[string]*appsv1.StatefulSet
	Services        map[string]*corev1.Service
	ConfigMaps      map[string]*corev1.ConfigMap
	PDBs            map[string]*policyv1.PodDisruptionBudget
	Jobs            map[string]*batchv1.Job
	PodMonitors     map[string]*monitoringv1.PodMonitor
	PrometheusRules map[string]*monitoringv1.PrometheusRule
	// of the official nats chart
	ServiceAccounts map[string]*corev1.ServiceAccount
	Pods            map[string]*corev1.Pod
	// Hooks are the objects rendered as Helm hooks, by kind/name.
	Hooks map[string]bool
}

// render renders the chart at chartPath for release name in namespace ns with the values
// of valueFiles, then set (name=value, as --set), as Helm's install would without a
// cluster. An object of a kind the test does not know, or with a field its type lacks,
// fails the test.
func render(t *testing.T, chartPath, name, ns string, valueFiles []string, set ...string) *rendered {
	t.Helper()
	ch, err := loader.Load(chartPath)
	if err != nil {
		t.Fatalf("load chart %s: %v", chartPath, err)
	}
	vals, err := (&values.Options{ValueFiles: valueFiles, Values: set}).MergeValues(getter.Providers{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &action.Configuration{Log: func(string, ...any) {}}
	install := action.NewInstall(cfg)
	install.ClientOnly, install.DryRun, install.Replace = true, true, true
	install.ReleaseName, install.Namespace = name, ns
	install.KubeVersion = kubeVersion
	install.APIVersions = chartutil.VersionSet{"monitoring.coreos.com/v1", "monitoring.coreos.com/v1/PodMonitor", "monitoring.coreos.com/v1/PrometheusRule"}
	rel, err := install.Run(ch, vals)
	if err != nil {
		t.Fatalf("render %s with %v %v: %v", chartPath, valueFiles, set, err)
	}
	r := &rendered{
		Deployments: map[string]*appsv1.Deployment{}, StatefulSets: map[string]*appsv1.StatefulSet{},
		Services: map[string]*corev1.Service{}, ConfigMaps: map[string]*corev1.ConfigMap{},
		PDBs: map[string]*policyv1.PodDisruptionBudget{}, Jobs: map[string]*batchv1.Job{},
		PodMonitors: map[string]*monitoringv1.PodMonitor{}, PrometheusRules: map[string]*monitoringv1.PrometheusRule{},
		ServiceAccounts: map[string]*corev1.ServiceAccount{}, Pods: map[string]*corev1.Pod{},
		Hooks: map[string]bool{},
	}
	r.add(t, rel.Manifest, false)
	for _, h := range rel.Hooks {
		r.add(t, h.Manifest, true)
	}
	return r
}

func (r *rendered) add(t *testing.T, manifest string, hook bool) {
	t.Helper()
	for _, doc := range strings.Split(manifest, "\n---") {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		if head.Kind == "" {
			continue // comments only
		}
		var obj any
		switch head.Kind {
		case "Deployment":
			obj = put(r.Deployments, head.Metadata.Name)
		case "StatefulSet":
			obj = put(r.StatefulSets, head.Metadata.Name)
		case "Service":
			obj = put(r.Services, head.Metadata.Name)
		case "ConfigMap":
			obj = put(r.ConfigMaps, head.Metadata.Name)
		case "PodDisruptionBudget":
			obj = put(r.PDBs, head.Metadata.Name)
		case "Job":
			obj = put(r.Jobs, head.Metadata.Name)
		case "PodMonitor":
			obj = put(r.PodMonitors, head.Metadata.Name)
		case "PrometheusRule":
			obj = put(r.PrometheusRules, head.Metadata.Name)
		case "ServiceAccount":
			obj = put(r.ServiceAccounts, head.Metadata.Name)
		case "Pod":
			obj = put(r.Pods, head.Metadata.Name)
		default:
			t.Fatalf("the chart renders a %s (%s) the test does not check", head.Kind, head.Metadata.Name)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s %s does not decode strictly into its Kubernetes type: %v\n%s", head.Kind, head.Metadata.Name, err, doc)
		}
		if hook {
			r.Hooks[head.Kind+"/"+head.Metadata.Name] = true
		}
	}
}

// put adds a new T under name and returns it; a name rendered twice fails later on the
// duplicate check of the caller, so it is kept distinct here.
func put[T any](m map[string]*T, name string) *T {
	v := new(T)
	for m[name] != nil {
		name += "'"
	}
	m[name] = v
	return v
}

// writeValues writes YAML values to a temporary file and returns its path.
func writeValues(t *testing.T, y string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "values-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, y); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

func describe(v any) string { b, _ := yaml.Marshal(v); return fmt.Sprintf("\n%s", b) }
