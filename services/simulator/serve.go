package simulator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Addrs are the listen addresses of the simulators.
type Addrs struct {
	ServiceTrade, Assets, WorkOrders, Paycom string
}

// DefaultAddrs are the simulators' usual loopback ports; `make run` and the README use them.
var DefaultAddrs = Addrs{ServiceTrade: "127.0.0.1:9101", Assets: "127.0.0.1:9102", WorkOrders: "127.0.0.1:9103", Paycom: "127.0.0.1:9104"}

// AnyLoopback puts every simulator on a free loopback port (tests).
var AnyLoopback = Addrs{ServiceTrade: "127.0.0.1:0", Assets: "127.0.0.1:0", WorkOrders: "127.0.0.1:0", Paycom: "127.0.0.1:0"}

// RegisterFlags binds a to fs as <prefix>servicetrade-addr, <prefix>assets-addr,
// <prefix>workorders-addr and <prefix>paycom-addr, defaulting to DefaultAddrs.
func (a *Addrs) RegisterFlags(fs *flag.FlagSet, prefix string) {
	fs.StringVar(&a.ServiceTrade, prefix+"servicetrade-addr", DefaultAddrs.ServiceTrade, "simulated ServiceTrade API (under /api; a feed's admin under "+FeedPrefix+")")
	fs.StringVar(&a.Assets, prefix+"assets-addr", DefaultAddrs.Assets, "simulated asset registry")
	fs.StringVar(&a.WorkOrders, prefix+"workorders-addr", DefaultAddrs.WorkOrders, "simulated work-order system")
	fs.StringVar(&a.Paycom, prefix+"paycom-addr", DefaultAddrs.Paycom, "simulated Paycom payroll")
}

// URLs are the simulators' base URLs (http://host:port); the ServiceTrade API lives under
// ServiceTrade + "/api".
type URLs struct {
	ServiceTrade, Assets, WorkOrders, Paycom string
}

// Servers are the simulators of a Stack listening on their addresses; Serve serves them.
type Servers struct {
	URLs URLs
	lns  []net.Listener
	srvs []*http.Server
}

// Listen opens the listeners of s's simulators at a — so an address in use is an error
// now, not later — and, if feed is not nil, serves its admin beside the ServiceTrade API.
func (s *Stack) Listen(a Addrs, feed *Feed) (*Servers, error) {
	sv := &Servers{}
	api := http.Handler(s.API)
	if feed != nil {
		mux := http.NewServeMux()
		mux.Handle(FeedPrefix, feed.Handler())
		mux.Handle("/", s.API)
		api = mux
	}
	for _, sim := range []struct {
		name, addr string
		h          http.Handler
		url        *string
	}{
		{"ServiceTrade API", a.ServiceTrade, api, &sv.URLs.ServiceTrade},
		{"asset registry", a.Assets, s.Registry, &sv.URLs.Assets},
		{"work-order system", a.WorkOrders, s.WorkOrders, &sv.URLs.WorkOrders},
		{"payroll", a.Paycom, s.Payroll, &sv.URLs.Paycom},
	} {
		ln, err := net.Listen("tcp", sim.addr)
		if err != nil {
			sv.close()
			return nil, fmt.Errorf("simulated %s: %w", sim.name, err)
		}
		*sim.url = "http://" + dialable(ln.Addr())
		sv.lns = append(sv.lns, ln)
		sv.srvs = append(sv.srvs, &http.Server{Handler: sim.h, ReadHeaderTimeout: 5 * time.Second})
	}
	return sv, nil
}

// Serve serves the simulators until ctx ends, then closes them and returns nil; or returns
// the first server's error.
func (sv *Servers) Serve(ctx context.Context) error {
	errs := make(chan error, len(sv.srvs))
	for i, srv := range sv.srvs {
		go func() { errs <- srv.Serve(sv.lns[i]) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	sv.close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (sv *Servers) close() {
	for _, ln := range sv.lns {
		_ = ln.Close()
	}
	for _, srv := range sv.srvs {
		_ = srv.Close()
	}
}

// dialable turns a listener address into one a client can dial: an unspecified host
// becomes loopback.
func dialable(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
}
