package webhook_test

import (
	"fmt"
	"time"

	"github.com/fieldstream/fieldstream/pkg/webhook"
)

// Verifying the Standard Webhooks spec's own test delivery.
func ExampleVerifyStandard() {
	secret, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	h := webhook.StandardHeaders{
		ID:        "msg_p5jXN8AQM9LWM0D4loKWxJek",
		Timestamp: "1614265330",
		Signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	}
	body := []byte(`{"test": 2432232314}`)
	_, err = webhook.VerifyStandard([]webhook.Secret{secret}, h, body, time.Unix(1614265330, 0), webhook.DefaultTolerance)
	fmt.Println("at send time:", err)
	_, err = webhook.VerifyStandard([]webhook.Secret{secret}, h, body, time.Unix(1614265330, 0).Add(time.Hour), webhook.DefaultTolerance)
	fmt.Println("an hour later:", err)
	fmt.Println(secret)
	// Output:
	// at send time: <nil>
	// an hour later: webhook-timestamp outside the tolerance window
	// whsec_[redacted]
}

func ExampleParseServiceTrade() {
	d, err := webhook.ParseServiceTrade([]byte(`{"messageId":"5b0f3c1e","timestamp":"1767106200","data":[
	  {"action":"updated","timestamp":1767106195,"entity":{"type":"job","id":2274033731792769},
	   "changeset":[{"field":"status","oldValue":"scheduled","newValue":"completed"}]}]}`))
	if err != nil {
		panic(err)
	}
	it := d.Items[0]
	fmt.Println(it.Entity, it.EntityID, it.Action)
	fmt.Println(it.DedupID("demo"))
	// Output:
	// work_order 2274033731792769 completed
	// st:demo:work_order:2274033731792769:completed:1767106195:bae11ceb7284
}
