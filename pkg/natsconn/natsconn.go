// Package natsconn connects fieldstream's binaries to NATS the same way everywhere:
// reconnecting forever, with every connection event logged, and with the same flags for the
// server, credentials and TLS in every binary. (fsctl, the operator's command line, also
// reads nats CLI contexts and connects through Connect with what they say.)
package natsconn

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// Options say where and as whom a service connects. The zero value (with a URL) is an
// anonymous plaintext connection, as to `make run`'s embedded server.
type Options struct {
	// URL of the server(s), comma-separated for a cluster.
	URL string
	// User and Password authenticate with a username and password.
	User, Password string
	// Creds is a JWT credentials file (decentralized auth); NKey a file holding an nkey
	// seed (the server's config holds only its public key). At most one of User, Creds and
	// NKey may be set.
	Creds, NKey string
	// TLSCA is the PEM file of the CA that signed the server's certificate; setting it
	// requires TLS. TLSCert and TLSKey, set together, are a client certificate for servers
	// that verify clients.
	TLSCA, TLSCert, TLSKey string
	// InboxPrefix replaces "_INBOX" in the subjects replies come back on, so a server can
	// allow each user to subscribe to its own inboxes only (default "_INBOX").
	InboxPrefix string
}

// EnvFallbacks maps the connection flags to the variables the nats CLI reads, consulted
// when the FS_ variable is empty (envflag.Parse's extra map).
var EnvFallbacks = map[string]string{
	"nats-url":      "NATS_URL",
	"nats-user":     "NATS_USER",
	"nats-password": "NATS_PASSWORD",
	"nats-creds":    "NATS_CREDS",
	"nats-nkey":     "NATS_NKEY",
	"nats-tls-ca":   "NATS_CA",
	"nats-tls-cert": "NATS_CERT",
	"nats-tls-key":  "NATS_KEY",
}

// RegisterFlags binds o to fs under the names of EnvFallbacks plus -nats-inbox-prefix;
// defaultURL is -nats-url's default.
func (o *Options) RegisterFlags(fs *flag.FlagSet, defaultURL string) {
	fs.StringVar(&o.URL, "nats-url", defaultURL, "NATS server URL(s), comma-separated")
	fs.StringVar(&o.User, "nats-user", "", "NATS username")
	fs.StringVar(&o.Password, "nats-password", "", "NATS password (prefer the environment to the command line)")
	fs.StringVar(&o.Creds, "nats-creds", "", "NATS JWT credentials file")
	fs.StringVar(&o.NKey, "nats-nkey", "", "file holding the NATS user's nkey seed")
	fs.StringVar(&o.TLSCA, "nats-tls-ca", "", "PEM CA certificate that verifies the NATS server; requires TLS")
	fs.StringVar(&o.TLSCert, "nats-tls-cert", "", "PEM client certificate, for servers that verify clients")
	fs.StringVar(&o.TLSKey, "nats-tls-key", "", "PEM key of -nats-tls-cert")
	fs.StringVar(&o.InboxPrefix, "nats-inbox-prefix", "", `subject prefix of reply inboxes (default "_INBOX"); a server may allow each user only its own`)
}

// Validate reports the first combination that cannot work.
func (o Options) Validate() error {
	n := 0
	for _, set := range []bool{o.User != "", o.Creds != "", o.NKey != ""} {
		if set {
			n++
		}
	}
	switch {
	case o.URL == "":
		return errors.New("natsconn: no server URL")
	case n > 1:
		return errors.New("natsconn: give one of -nats-user, -nats-creds and -nats-nkey")
	case o.Password != "" && o.User == "":
		return errors.New("natsconn: -nats-password without -nats-user")
	case (o.TLSCert == "") != (o.TLSKey == ""):
		return errors.New("natsconn: -nats-tls-cert and -nats-tls-key go together")
	}
	return nil
}

// ConnectError is Connect's error when the first connection fails: an unreachable
// server, refused credentials, a TLS failure.
type ConnectError struct {
	URL string // the server(s) dialled
	Err error
}

func (e *ConnectError) Error() string { return fmt.Sprintf("connect to NATS at %s: %v", e.URL, e.Err) }

func (e *ConnectError) Unwrap() error { return e.Err }

// natsOptions turns o into nats.go options. A missing nkey seed file is an error here, not
// at the first connection attempt.
func (o Options) natsOptions() ([]nats.Option, error) {
	var opts []nats.Option
	if o.User != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	if o.NKey != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKey)
		if err != nil {
			return nil, fmt.Errorf("natsconn: nkey seed %s: %w", o.NKey, err)
		}
		opts = append(opts, opt)
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	if o.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(o.InboxPrefix))
	}
	return opts, nil
}

// Connect connects to o.URL as name, with opts after o's own options (a caller may add
// what o cannot say, such as a nats CLI context's settings). The connection
// retries forever on disconnect; publishes made while disconnected fail at their caller's
// deadline rather than queueing without bound. The first connection must succeed within
// the library's timeout (opts may set another, nats.Timeout), or Connect returns a
// *ConnectError — an authentication or TLS failure included. A permission the server
// denies is logged through log as an asynchronous error; the request that hit it fails at
// its deadline.
func Connect(o Options, name string, log zerolog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	auth, err := o.natsOptions()
	if err != nil {
		return nil, err
	}
	base := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ReconnectBufSize(8 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Close or Drain
				log.Warn().Err(err).Msg("nats disconnected")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("nats reconnected")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Error().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("nats async error")
		}),
	}
	opts = append(append(base, auth...), opts...)
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, &ConnectError{URL: o.URL, Err: err}
	}
	return nc, nil
}
