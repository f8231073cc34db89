package ops

import (
	"context"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/services/payroll"
)

// ImportEmployees maps ServiceTrade users to payroll employee codes in payroll's employee
// bucket (creating it if it does not exist), one put per user, in user order, and returns
// how many it stored. A user already mapped takes the new code. It stops at the first
// failure; the users before it stay mapped.
func ImportEmployees(ctx context.Context, js jetstream.JetStream, codes map[int64]string) (int, error) {
	emps, err := payroll.OpenEmployees(ctx, js)
	if err != nil {
		return 0, err
	}
	users := make([]int64, 0, len(codes))
	for u := range codes {
		users = append(users, u)
	}
	slices.Sort(users)
	for i, u := range users {
		if codes[u] == "" {
			return i, fmt.Errorf("user %d: empty employee code", u)
		}
		if err := emps.Put(ctx, u, codes[u]); err != nil {
			return i, fmt.Errorf("user %d: %w", u, err)
		}
	}
	return len(users), nil
}
