package dashboard_test

import (
	"net/http"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/services/fsctl/dashboard"
)

// Mount the dashboard beside another handler: it answers under its prefix only.
func ExampleNew() {
	var js jetstream.JetStream // connected elsewhere
	var api http.Handler       // e.g. the gateway
	d, err := dashboard.New(js, dashboard.Options{})
	if err != nil {
		return // only with a nil JetStream or invalid Options
	}
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("/dashboard/", d) // the page at /dashboard/, its JSON at /dashboard/api/status
	_ = http.ListenAndServe("127.0.0.1:8080", mux)
}
