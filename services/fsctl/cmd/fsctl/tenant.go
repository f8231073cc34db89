package main

// tenantCmd groups the tenant commands, a file each.
type tenantCmd struct {
	Put tenantPutCmd `cmd:"" help:"create or replace a tenant's webhook credentials and rate (the gateways follow within moments)"`
}
