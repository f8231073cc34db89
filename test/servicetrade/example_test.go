package servicetrade_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	sim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

// Enrich a thin webhook item: fetch the job it names, and see that a deleted or unknown
// one is a permanent 404. The simulated API stands in for api.servicetrade.com.
func Example() {
	account, _ := sim.NewAccount(sim.AccountConfig{Seed: 1, Start: time.Unix(1767106200, 0)})
	api, _ := sim.NewAPI(account, sim.APIConfig{ClientID: "id", ClientSecret: "secret"})
	srv := httptest.NewServer(api)
	defer srv.Close()

	client, err := servicetrade.New(servicetrade.Config{
		BaseURL:      srv.URL + "/api",
		ClientID:     "id",
		ClientSecret: "secret",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	item := account.Jobs()[0] // as if a webhook item had named it

	job, err := client.Job(ctx, item.ID)
	fmt.Println(job.ID == item.ID, job.Status == item.Status, err)

	_, err = client.Job(ctx, 42)
	fmt.Println(failure.StatusOf(err), failure.IsPermanent(err))

	fmt.Println("token grants:", api.Stats().TokenGrants)
	// Output:
	// true true <nil>
	// 404 true
	// token grants: 1
}
