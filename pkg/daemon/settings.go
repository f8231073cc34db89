package daemon

import (
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/natsconn"
)

// DefaultNATSURL is where a program connects unless told otherwise: the nats CLI's default,
// and where `make run` embeds its server.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// settings are the flags every program shares.
type settings struct {
	nats         natsconn.Options
	logLevel     string
	logFormat    string
	setupTimeout time.Duration
	debugAddr    string

	// of an embedded server
	dataDir, natsListen string
	syncAlways          bool
}

func (s *settings) register(fs *flag.FlagSet, prog Program) {
	if !prog.WithoutNATS {
		url := DefaultNATSURL
		if prog.Embed != nil {
			url = "" // embed
			fs.StringVar(&s.dataDir, "data-dir", ".data", "embedded JetStream's file store (when -nats-url is empty)")
			fs.StringVar(&s.natsListen, "nats-listen", "127.0.0.1:4222", "client address of the embedded NATS server (the nats CLI's default)")
			fs.BoolVar(&s.syncAlways, "sync-always", false, "embedded JetStream fsyncs before every ack (durable across power loss, slower)")
		}
		s.nats.RegisterFlags(fs, url)
	}
	format := "json"
	if prog.ConsoleLog {
		format = "console"
	}
	fs.StringVar(&s.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&s.logFormat, "log-format", format, "log format: json (one object a line) or console (for people)")
	fs.DurationVar(&s.setupTimeout, "setup-timeout", 30*time.Second, "time allowed for start-up (streams, buckets, consumers) before giving up")
	fs.StringVar(&s.debugAddr, "debug-addr", "", "if set, serve Go's /debug/pprof/ on this address (keep it on loopback)")
}

func (s *settings) logger(w io.Writer, name string) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(s.logLevel)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("-log-level: %w", err)
	}
	w = zerolog.SyncWriter(w) // actors log concurrently, and w may be any writer
	switch s.logFormat {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	default:
		return zerolog.Logger{}, fmt.Errorf("-log-format %q: want json or console", s.logFormat)
	}
	if s.setupTimeout <= 0 {
		return zerolog.Logger{}, fmt.Errorf("-setup-timeout %s: must be positive", s.setupTimeout)
	}
	return zerolog.New(w).Level(level).With().Timestamp().Str("service", name).Logger(), nil
}

// embedConfig is what the embedded server's flags say; the server logs its warnings and
// errors through log.
func (s *settings) embedConfig(log zerolog.Logger) (EmbedConfig, error) {
	var base EmbedConfig
	host, port, err := net.SplitHostPort(s.natsListen)
	if err != nil {
		return base, fmt.Errorf("-nats-listen: %w", err)
	}
	if base.Port, err = strconv.Atoi(port); err != nil {
		return base, fmt.Errorf("-nats-listen %s: port: %w", s.natsListen, err)
	}
	base.Host = host
	if base.StoreDir, err = filepath.Abs(s.dataDir); err != nil {
		return base, fmt.Errorf("-data-dir: %w", err)
	}
	base.SyncAlways = s.syncAlways
	base.Logger = log.With().Str("component", "nats").Logger().Level(zerolog.WarnLevel)
	return base, nil
}
