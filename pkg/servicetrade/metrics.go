package servicetrade

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// GrantCounter returns a Config.OnGrant that counts token grants into
// fieldstream_oauth2_token_grants_total{api="servicetrade",outcome="ok"|"error"}, registered
// with reg (or the counter already registered there: every client of a process counts into
// one).
func GrantCounter(reg prometheus.Registerer) (func(error), error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fieldstream_oauth2_token_grants_total",
		Help: "OAuth2 token grants (client credentials) by API and outcome: ok, or error (the token could not be refreshed; the old one is used until it expires).",
	}, []string{"api", "outcome"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		c = are.ExistingCollector.(*prometheus.CounterVec)
	}
	ok, failed := c.WithLabelValues("servicetrade", "ok"), c.WithLabelValues("servicetrade", "error")
	return func(err error) {
		if err != nil {
			failed.Inc()
			return
		}
		ok.Inc()
	}, nil
}
