package consumer

import "errors"

// The outcomes of a message that is settled without being applied. A middleware reports
// them as the message's error; every layer outside it passes them on unchanged (they are
// neither retried nor dead-lettered), the metrics count them, and the consumer settles the
// message by them. Test for them with errors.Is: a layer may wrap them.
var (
	// ErrDeadLettered: the message was published to the dead-letter stream; the consumer
	// terminates it (TermWithReason) instead of redelivering it.
	ErrDeadLettered = errors.New("dead-lettered")
	// ErrAlreadyApplied: Idempotent kept the message from the handler because the ledger
	// records its event as applied (a redelivery, a replay, a re-publication under another
	// message id). The consumer acknowledges it without waiting for the server's
	// confirmation: a redelivery would be skipped again.
	ErrAlreadyApplied = errors.New("already applied")
	// ErrSuperseded: Idempotent kept the message from the handler because a newer change of
	// its entity was applied (for a polled event: one at least as new), which it must not
	// overwrite. The consumer acknowledges it as it does ErrAlreadyApplied.
	ErrSuperseded = errors.New("superseded by a newer change of the entity")
)

// skipped reports whether err says the message was kept from the handler on purpose
// (ErrAlreadyApplied, ErrSuperseded): settled, neither applied nor failed.
func skipped(err error) bool {
	return errors.Is(err, ErrAlreadyApplied) || errors.Is(err, ErrSuperseded)
}
