package servicetrade

import (
	"fmt"
	"math/rand/v2"
)

// Realistic values for a fire-protection and mechanical contractor's account.

var companyNames = []string{
	"Acme Property Management", "Brightline Hospitality", "Cedar Ridge Schools",
	"Delta Medical Group", "Evergreen Senior Living", "Falcon Logistics",
	"Granite Peak Apartments", "Harbor View Hotels", "Ironwood Manufacturing",
	"Juniper Retail Centers", "Keystone Office Parks", "Lakeside County",
}

var locationKinds = []string{"Main Office", "Warehouse", "North Campus", "Store", "Clinic", "Plant", "Tower", "Annex"}

var streets = []string{"Main St", "Oak Ave", "Industrial Pkwy", "Commerce Dr", "Maple Ln", "Airport Rd", "Lake Blvd", "Market St"}

var cities = []struct{ city, state, zip string }{
	{"Raleigh", "NC", "276"}, {"Durham", "NC", "277"}, {"Charlotte", "NC", "282"},
	{"Richmond", "VA", "232"}, {"Atlanta", "GA", "303"}, {"Nashville", "TN", "372"},
	{"Columbia", "SC", "292"}, {"Greenville", "SC", "296"},
}

var people = []string{
	"Alex Rivera", "Jordan Lee", "Sam Patel", "Casey Nguyen", "Morgan Brooks", "Taylor Kim",
	"Jamie Ortiz", "Riley Chen", "Drew Walker", "Avery Scott", "Quinn Harris", "Reese Turner",
}

// assetKind is an asset type with plausible manufacturers and models; weight is how common
// it is.
type assetKind struct {
	typ           string
	manufacturers []string
	models        []string
	weight        int
}

var assetKinds = []assetKind{
	{"extinguisher", []string{"Amerex", "Ansul", "Kidde", "Badger"}, []string{"B500", "B402", "Pro 10", "ADV-550"}, 5},
	{"backflow", []string{"Watts", "Febco", "Wilkins", "Ames"}, []string{"LF909", "860", "975XL", "4000SS"}, 2},
	{"sprinkler_system", []string{"Viking", "Tyco", "Reliable", "Victaulic"}, []string{"VK102", "TY3251", "F1FR", "V2707"}, 2},
	{"rtu", []string{"Carrier", "Trane", "Lennox", "York"}, []string{"48FC", "Voyager", "Energence", "ZF"}, 2},
	{"boiler", []string{"Weil-McLain", "Lochinvar", "Burnham", "Cleaver-Brooks"}, []string{"CGa", "Knight", "Alpine", "ClearFire"}, 1},
	{"fire_alarm_panel", []string{"Notifier", "Simplex", "Edwards"}, []string{"NFS2-3030", "4100ES", "EST4"}, 1},
}

// jobKind is a job type, how common it is, and how its description starts.
type jobKind struct {
	typ    string
	weight int
	what   string
}

var jobKinds = []jobKind{
	{"inspection", 6, "Annual inspection"},
	{"preventative_maintenance", 3, "Quarterly preventative maintenance"},
	{"service_call", 3, "Service call"},
	{"repair", 2, "Repair"},
	{"emergency_service_call", 1, "Emergency: no heat / system down"},
	{"installation", 1, "Install new equipment"},
}

// severities are weighted by repetition: most findings are suggestions.
var severities = []string{
	SeverityInoperable,
	SeverityDeficient, SeverityDeficient,
	SeveritySuggested, SeveritySuggested, SeveritySuggested,
}

var deficiencyTexts = []string{
	"Gauge reads in the red", "Tamper seal missing", "Hydrostatic test overdue",
	"Check valve leaking", "Corrosion on riser", "Belt worn, replace at next visit",
	"Pilot light fails to stay lit", "Hose cracked",
}

func pickString(rng *rand.Rand, from []string) string { return from[rng.IntN(len(from))] }

func phoneNumber(rng *rand.Rand) string {
	return fmt.Sprintf("(%03d) 555-%04d", 200+rng.IntN(800), rng.IntN(10000))
}

func serialNumber(rng *rand.Rand) string {
	return fmt.Sprintf("SN%08d", rng.IntN(100_000_000))
}

func randomAddress(rng *rand.Rand) Address {
	c := cities[rng.IntN(len(cities))]
	return Address{
		Street:     fmt.Sprintf("%d %s", 100+rng.IntN(9900), pickString(rng, streets)),
		City:       c.city,
		State:      c.state,
		PostalCode: fmt.Sprintf("%s%02d", c.zip, rng.IntN(100)),
	}
}
