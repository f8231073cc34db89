// Package streams embeds fieldstream's JetStream stream definitions: the JSON files beside
// this one, each in the exact format `nats stream add --config FILE` accepts. Binaries apply
// them at start-up with pkg/streamdef; operators can apply the same files with the nats CLI.
package streams

import "embed"

// Files holds every *.json stream definition of this directory.
//
//go:embed *.json
var Files embed.FS
