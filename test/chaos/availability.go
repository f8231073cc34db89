package chaos

import (
	"slices"
	"time"

	"github.com/fieldstream/fieldstream/services/simulator"
)

// MaxUnavailable returns the longest time between two consecutive 2xx answers to the
// feed's deliveries (any gateway, any kind) that were answered between from and to: how
// long ingest acknowledged nothing while the load ran. It is 0 with fewer than two.
func MaxUnavailable(deliveries []simulator.DeliveryRecord, from, to time.Time) time.Duration {
	var acks []time.Time
	for _, d := range deliveries {
		if d.Status/100 == 2 && !d.Answered.Before(from) && !d.Answered.After(to) {
			acks = append(acks, d.Answered)
		}
	}
	slices.SortFunc(acks, time.Time.Compare)
	var longest time.Duration
	for i := 1; i < len(acks); i++ {
		longest = max(longest, acks[i].Sub(acks[i-1]))
	}
	return longest
}
