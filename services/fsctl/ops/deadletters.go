package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/streams"
)

// DeadLetter is one message of the DLQ stream, with the kind of failure it is.
type DeadLetter struct {
	consumer.StoredDeadLetter
	Fingerprint string `json:"fingerprint"`
}

// Selection picks dead letters; zero fields select everything.
type Selection struct {
	Consumer    string
	Fingerprint string
	Subject     string    // a subject filter on the original subject, wildcards allowed
	Since       time.Time // last failure at or after
}

func (s Selection) matches(d DeadLetter) bool {
	return (s.Consumer == "" || d.Consumer == s.Consumer) &&
		(s.Fingerprint == "" || d.Fingerprint == s.Fingerprint) &&
		(s.Subject == "" || subjectMatches(s.Subject, d.Original)) &&
		(s.Since.IsZero() || !d.LastFailure.Before(s.Since))
}

// ListDeadLetters reads the dead letters sel selects, oldest first.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, sel Selection) ([]DeadLetter, error) {
	s, err := js.Stream(ctx, streams.DeadLetters)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", streams.DeadLetters, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	filter := consumer.DLQPrefix + ".>"
	if sel.Consumer != "" {
		filter = consumer.DLQPrefix + "." + sel.Consumer + ".>"
	}
	var out []DeadLetter
	err = ReadOrdered(ctx, s, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}},
		func(m jetstream.Msg, meta *jetstream.MsgMetadata) (bool, error) {
			if d := parseDeadLetter(meta.Sequence.Stream, m.Subject(), m.Headers(), m.Data()); sel.matches(d) {
				out = append(out, d)
			}
			return true, nil
		})
	return out, err
}

func parseDeadLetter(seq uint64, subject string, h nats.Header, data []byte) DeadLetter {
	d := consumer.ReadDeadLetter(seq, subject, h, data)
	return DeadLetter{StoredDeadLetter: d, Fingerprint: Fingerprint(d.Consumer, d.Class, d.Error)}
}

// variable parts of error messages: numbers, UUIDs, hex digests, URLs' hosts and ports.
var variable = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|https?://[^/ ]+|[0-9a-f]{12,}|\d+`)

// Fingerprint names a kind of failure: the consumer, the class and the error with its
// variable parts (ids, numbers, hosts) taken out, so "GET …/job/123: HTTP 404" and
// "GET …/job/456: HTTP 404" are one kind.
func Fingerprint(consumerName, class, errMsg string) string {
	h := sha256.Sum256([]byte(consumerName + "\x00" + class + "\x00" + variable.ReplaceAllString(errMsg, "#")))
	return hex.EncodeToString(h[:4])
}

// Group is the dead letters of one consumer and fingerprint.
type Group struct {
	Consumer    string    `json:"consumer"`
	Fingerprint string    `json:"fingerprint"`
	Class       string    `json:"class"`
	Count       int       `json:"count"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	Sample      string    `json:"sample_error"`
	SampleSubj  string    `json:"sample_subject"`
}

// GroupDeadLetters groups letters by consumer and fingerprint, largest group first.
func GroupDeadLetters(letters []DeadLetter) []Group {
	byKey := map[string]*Group{}
	var order []string
	for _, d := range letters {
		k := d.Consumer + "/" + d.Fingerprint
		g := byKey[k]
		if g == nil {
			g = &Group{Consumer: d.Consumer, Fingerprint: d.Fingerprint, Class: d.Class, FirstSeen: d.FirstFailure, Sample: d.Error, SampleSubj: d.Original}
			byKey[k] = g
			order = append(order, k)
		}
		g.Count++
		if d.FirstFailure.Before(g.FirstSeen) {
			g.FirstSeen = d.FirstFailure
		}
		if d.LastFailure.After(g.LastSeen) {
			g.LastSeen = d.LastFailure
		}
	}
	out := make([]Group, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return out
}

// Redrive re-delivers the selected dead letters to the consumer that failed them, and
// only to it: a copy of each on redrive.<consumer>.<original subject> in DLQ, which only
// that consumer reads. Each dead letter and its copy leave DLQ once that consumer has
// settled it (applied, or dead-lettered anew). It returns the dead letters sent; with
// dryRun nothing is sent.
func Redrive(ctx context.Context, js jetstream.JetStream, sel Selection, dryRun bool) ([]DeadLetter, error) {
	letters, err := ListDeadLetters(ctx, js, sel)
	if err != nil || dryRun {
		return letters, err
	}
	for i, d := range letters {
		msg, err := d.RedriveMsg()
		if err == nil {
			_, err = js.PublishMsg(ctx, msg)
		}
		if err != nil {
			return letters[:i], fmt.Errorf("redrive dead letter %d: %w", d.Sequence, err)
		}
	}
	return letters, nil
}

// Purge deletes the selected dead letters for good. With dryRun nothing is deleted.
func Purge(ctx context.Context, js jetstream.JetStream, sel Selection, dryRun bool) ([]DeadLetter, error) {
	letters, err := ListDeadLetters(ctx, js, sel)
	if err != nil || dryRun {
		return letters, err
	}
	s, err := js.Stream(ctx, streams.DeadLetters)
	if err != nil {
		return nil, err
	}
	for i, d := range letters {
		if err := s.DeleteMsg(ctx, d.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return letters[:i], fmt.Errorf("purge dead letter %d: %w", d.Sequence, err)
		}
	}
	return letters, nil
}

// GetDeadLetter reads the dead letter at seq.
func GetDeadLetter(ctx context.Context, js jetstream.JetStream, seq uint64) (DeadLetter, error) {
	s, err := js.Stream(ctx, streams.DeadLetters)
	if err != nil {
		return DeadLetter{}, err
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return parseDeadLetter(seq, m.Subject, m.Header, m.Data), nil
}
