package main

// employeesCmd groups the payroll employee mapping commands, a file each.
type employeesCmd struct {
	Import employeesImportCmd `cmd:"" help:"map ServiceTrade users to payroll employee codes from a JSON object {\"<user id>\":\"<eecode>\"}"`
}
