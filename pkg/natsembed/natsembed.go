// Package natsembed runs a NATS server with JetStream inside the calling process: the
// single-machine default of fieldstream, and the server of every integration test.
package natsembed

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/daemon"
)

// Config is an embedded server's configuration; the zero value is not valid: StoreDir is
// required.
type Config struct {
	// Host and Port of the client listener. Port 0 means 4222, the nats CLI's default;
	// -1 picks a free port (tests).
	Host string
	Port int
	// StoreDir is where JetStream keeps its file store. Required.
	StoreDir string
	// ServerName names the server in `nats server` output and advisories.
	ServerName string
	// SyncAlways makes JetStream fsync before every acknowledgement (sync_interval:
	// always); the default syncs every two minutes, which loses the last writes if the
	// machine, not just the process, dies.
	SyncAlways bool
	// Logger receives the server's log lines; the zero value discards them.
	Logger zerolog.Logger
	// ReadyTimeout bounds the wait for the server to accept connections (default 10 s).
	ReadyTimeout time.Duration
}

// Start starts the server and waits until it accepts client connections. The caller shuts
// it down with Shutdown and WaitForShutdown.
func Start(cfg Config) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, fmt.Errorf("natsembed: StoreDir is required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = 4222
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	}
	if cfg.SyncAlways {
		opts.SyncAlways = true
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	s.SetLoggerV2(logAdapter{cfg.Logger}, false, false, false)
	go s.Start()
	if !s.ReadyForConnections(cfg.ReadyTimeout) {
		s.Shutdown()
		return nil, fmt.Errorf("natsembed: server on %s:%d not ready within %s", cfg.Host, cfg.Port, cfg.ReadyTimeout)
	}
	return s, nil
}

// logAdapter sends nats-server's log lines to zerolog.
type logAdapter struct{ log zerolog.Logger }

func (l logAdapter) Noticef(format string, v ...any) { l.log.Info().Msgf(format, v...) }
func (l logAdapter) Warnf(format string, v ...any)   { l.log.Warn().Msgf(format, v...) }
func (l logAdapter) Fatalf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l logAdapter) Errorf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l logAdapter) Debugf(format string, v ...any)  { l.log.Debug().Msgf(format, v...) }
func (l logAdapter) Tracef(format string, v ...any)  { l.log.Trace().Msgf(format, v...) }

// Embed starts a server named name as the daemon's flags say (daemon.Program.Embed) and
// returns its client URL and how to shut it down.
func Embed(name string) func(daemon.EmbedConfig) (string, func(), error) {
	return func(c daemon.EmbedConfig) (string, func(), error) {
		s, err := Start(Config{Host: c.Host, Port: c.Port, StoreDir: c.StoreDir, SyncAlways: c.SyncAlways, ServerName: name, Logger: c.Logger})
		if err != nil {
			return "", nil, err
		}
		return s.ClientURL(), func() { s.Shutdown(); s.WaitForShutdown() }, nil
	}
}
