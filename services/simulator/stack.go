// Package simulator runs fieldstream's stand-ins for the outside world together: one
// simulated ServiceTrade account (its webhooks and its REST API), a downstream asset
// registry, a work-order system and Paycom-style payroll. Listen serves a Stack: `make run`
// and the simulator binary on the usual loopback ports, tests on free ones.
package simulator

import (
	"fmt"
	"time"

	"github.com/fieldstream/fieldstream/services/simulator/assetsys"
	"github.com/fieldstream/fieldstream/services/simulator/paycom"
	"github.com/fieldstream/fieldstream/services/simulator/servicetrade"
	"github.com/fieldstream/fieldstream/services/simulator/workordersys"
)

// StackConfig configures a Stack; zero fields take the defaults in their comments.
type StackConfig struct {
	// Account configures the simulated ServiceTrade account. Its AssetsPerLocation
	// defaults to 25 here: a fire-protection contractor's site has dozens of extinguishers,
	// and an inspection visit updates every one of them at once.
	Account servicetrade.AccountConfig
	// ClientID and ClientSecret are the ServiceTrade OAuth2 credentials (default
	// "fieldstream" / "dev-secret"); TokenLifetime their tokens' lifetime (default 1 h).
	ClientID, ClientSecret string
	TokenLifetime          time.Duration
	// PaycomSID and PaycomToken are the payroll API's Basic credentials (default
	// "fieldstream" / "dev-paycom-token").
	PaycomSID, PaycomToken string
	// UnknownToPayroll lists technicians (by position, from 0) whose employee code payroll
	// does not know, so their punches are rejected: for tests of batch splitting.
	UnknownToPayroll []int
	// PaycomImportIdentical makes payroll import a punch identical to an imported one
	// again (paycom.Config.ImportIdentical).
	PaycomImportIdentical bool
}

// Stack is a running set of simulators. Its parts are safe for concurrent use.
type Stack struct {
	Config     StackConfig
	Account    *servicetrade.Account
	API        *servicetrade.API
	Registry   *assetsys.Registry
	WorkOrders *workordersys.System
	Payroll    *paycom.Payroll
	// EECodes maps every technician's ServiceTrade user id to a payroll employee code.
	EECodes map[int64]string
}

// NewStack builds the simulators.
func NewStack(cfg StackConfig) (*Stack, error) {
	if cfg.ClientID == "" {
		cfg.ClientID = "fieldstream"
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = "dev-secret"
	}
	if cfg.PaycomSID == "" {
		cfg.PaycomSID = "fieldstream"
	}
	if cfg.PaycomToken == "" {
		cfg.PaycomToken = "dev-paycom-token"
	}
	if cfg.Account.AssetsPerLocation == 0 {
		cfg.Account.AssetsPerLocation = 25
	}
	acct, err := servicetrade.NewAccount(cfg.Account)
	if err != nil {
		return nil, err
	}
	api, err := servicetrade.NewAPI(acct, servicetrade.APIConfig{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, TokenLifetime: cfg.TokenLifetime})
	if err != nil {
		return nil, err
	}
	s := &Stack{Config: cfg, Account: acct, API: api, EECodes: map[int64]string{}}
	unknown := map[int]bool{}
	for _, i := range cfg.UnknownToPayroll {
		unknown[i] = true
	}
	var known []string
	n := 0
	for _, u := range acct.Users() {
		if !u.Technician {
			continue
		}
		code := fmt.Sprintf("E%03d", n+1)
		s.EECodes[u.ID] = code
		if !unknown[n] {
			known = append(known, code)
		}
		n++
	}
	if s.Payroll, err = paycom.New(paycom.Config{SID: cfg.PaycomSID, Token: cfg.PaycomToken, Employees: known, ImportIdentical: cfg.PaycomImportIdentical}); err != nil {
		return nil, err
	}
	if s.Registry, err = assetsys.New(assetsys.Config{}); err != nil {
		return nil, err
	}
	if s.WorkOrders, err = workordersys.New(workordersys.Config{}); err != nil {
		return nil, err
	}
	return s, nil
}
