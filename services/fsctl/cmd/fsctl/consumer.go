package main

// consumerCmd groups the consumer commands, a file each.
type consumerCmd struct {
	Add    consumerAddCmd    `cmd:"" help:"subscribe a new durable consumer to EVENTS"`
	Pause  consumerPauseCmd  `cmd:"" help:"pause a consumer (JetStream consumer pause)"`
	Resume consumerResumeCmd `cmd:"" help:"resume a paused consumer"`
}
