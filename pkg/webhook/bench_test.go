package webhook_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/webhook"
)

// BenchmarkVerifyStandard compares the signature work of an honest delivery with the most
// expensive hostile ones of the same body size (1 MiB, the gateway's body limit), for a
// tenant in the middle of a key rotation (two secrets, the new one first). The honest
// delivery is signed with the new key; the hostile ones carry the most signature entries
// a header may hold, none of them valid, or 64 KiB of them (what net/http lets through).
// Compare ns/op: hostile_max_entries is the worst case and should stay within ~2× honest
// (one MAC per secret, whatever the entries); hostile_64KiB_header is refused before any MAC.
//
//	go test -run '^$' -bench VerifyStandard -benchtime 200x ./webhook
func BenchmarkVerifyStandard(b *testing.B) {
	newKey := mustSecret(b, specSecret)
	oldKey := mustSecret(b, "whsec_"+strings.Repeat("QUFB", 8))
	secrets := []webhook.Secret{newKey, oldKey}
	body := append([]byte(`{"type":"asset.updated","data":{"id":1,"pad":"`), bytes.Repeat([]byte("x"), 1<<20-64)...)
	body = append(body, `"}}`...)
	now := time.Now()
	ts := now.Unix()
	wrong := "v1," + strings.Repeat("A", 43) + "="
	for _, bc := range []struct {
		name string
		sig  string
	}{
		{"honest", newKey.Sign("msg_1", ts, body)},
		{"honest_old_key", oldKey.Sign("msg_1", ts, body)},
		{"hostile_max_entries", strings.TrimSpace(strings.Repeat(wrong+" ", webhook.MaxSignatures))},
		{"hostile_64KiB_header", strings.TrimSpace(strings.Repeat(wrong+" ", 64<<10/len(wrong+" ")))},
	} {
		h := webhook.StandardHeaders{ID: "msg_1", Timestamp: strconv.FormatInt(ts, 10), Signature: bc.sig}
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_, _ = webhook.VerifyStandard(secrets, h, body, now, webhook.DefaultTolerance)
			}
		})
	}
}
