# fieldstream's JetStream resources as a Terraform module: the streams and consumers of
# streams/ and the shared KV buckets, generated into resources.tf by `make resources` (a test
# fails when it differs from streams/). The caller configures the jetstream provider (as
# the admin user); see ../example.
terraform {
  required_version = ">= 1.5"

  required_providers {
    jetstream = {
      source  = "nats-io/jetstream"
      version = ">= 0.2.0"
    }
  }
}
