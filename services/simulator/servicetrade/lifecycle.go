package servicetrade

import (
	"math/rand/v2"
	"slices"
	"strconv"
)

// A step is one thing that happens in the account: a job is created, a technician
// arrives, an invoice goes out. run reports false, changing nothing, when there is nothing
// for it to act on (no job waiting to be scheduled, say); step then draws again.
type step struct {
	weight int
	run    func(a *Account, now int64) bool
}

// steps weighs what happens: the job life-cycle dominates, as in a real account, with
// master data (companies, locations, assets) changing now and then.
var steps = []step{
	{100, (*Account).createJob},
	{100, (*Account).scheduleJob},
	{20, (*Account).decideBid},
	{30, (*Account).rescheduleAppointment},
	{10, (*Account).noShow},
	{10, (*Account).cancelJob},
	{10, (*Account).deleteCanceledJob},
	{80, (*Account).startTravel},
	{80, (*Account).arriveOnSite},
	{80, (*Account).finishVisit},
	{60, (*Account).invoiceOrClose},
	{30, (*Account).sendInvoice},
	{30, (*Account).closeInvoiced},
	{20, (*Account).reviewDeficiency},
	{20, (*Account).fixDeficiency},
	{10, (*Account).deleteInvalidDeficiency},
	{20, (*Account).createAsset},
	{30, (*Account).toggleAsset},
	{10, (*Account).deleteInactiveAsset},
	{5, (*Account).createLocation},
	{5, (*Account).changeLocationPhone},
	{3, (*Account).createCompany},
	{5, (*Account).changeCompanyPhone},
}

// step makes one thing happen, appending its changes to a.pending. It always makes
// progress: creating a job is always possible, because an account always has a location.
func (a *Account) step(now int64) {
	for range 32 {
		s := weighted(a.rng, steps, func(s step) int { return s.weight })
		if s.run(a, now) {
			return
		}
	}
	a.createJob(now)
}

func weighted[T any](rng *rand.Rand, items []T, weight func(T) int) T {
	total := 0
	for _, it := range items {
		total += weight(it)
	}
	r := rng.IntN(total)
	for _, it := range items {
		if r -= weight(it); r < 0 {
			return it
		}
	}
	return items[len(items)-1]
}

func (a *Account) emit(now, user int64, action, typ string, id int64, changes ...FieldChange) {
	a.pending = append(a.pending, Change{
		Action:    action,
		Timestamp: now,
		UserID:    user,
		Entity:    Ref(typ, id),
		Changeset: changes,
	})
}

func (a *Account) officeUser() int64 { return a.office[a.rng.IntN(len(a.office))] }

func (a *Account) chance(p float64) bool { return a.rng.Float64() < p }

// setIn returns m[key], creating it.
func setIn(m map[string]*idSet, key string) *idSet {
	s := m[key]
	if s == nil {
		s = &idSet{}
		m[key] = s
	}
	return s
}

// Master data.

func (a *Account) addCompany(now int64) *Company {
	c := &Company{
		ID:          a.newID(),
		Name:        pickString(a.rng, companyNames),
		PhoneNumber: phoneNumber(a.rng),
		Status:      StatusActive,
		Created:     now,
		Updated:     now,
	}
	a.companies[c.ID] = c
	a.companyIDs.add(c.ID)
	return c
}

func (a *Account) addLocation(now, companyID int64) *Location {
	l := &Location{
		ID:          a.newID(),
		CompanyID:   companyID,
		Name:        a.companies[companyID].Name + " – " + pickString(a.rng, locationKinds),
		Address:     randomAddress(a.rng),
		PhoneNumber: phoneNumber(a.rng),
		Status:      StatusActive,
		Created:     now,
		Updated:     now,
	}
	a.locations[l.ID] = l
	a.locationIDs.add(l.ID)
	a.assetsAt[l.ID] = &idSet{}
	return l
}

func (a *Account) addAsset(now, locationID int64) *Asset {
	k := weighted(a.rng, assetKinds, func(k assetKind) int { return k.weight })
	as := &Asset{
		ID:         a.newID(),
		LocationID: locationID,
		Type:       k.typ,
		Status:     StatusActive,
		Properties: AssetProperties{
			Serial:       serialNumber(a.rng),
			Manufacturer: pickString(a.rng, k.manufacturers),
			Model:        pickString(a.rng, k.models),
		},
		Created: now,
		Updated: now,
	}
	a.assets[as.ID] = as
	a.assetIDs.add(as.ID)
	a.assetsAt[locationID].add(as.ID)
	return as
}

func (a *Account) createCompany(now int64) bool {
	c := a.addCompany(now)
	l := a.addLocation(now, c.ID)
	user := a.officeUser()
	a.emit(now, user, ActionCreated, TypeCompany, c.ID)
	a.emit(now, user, ActionCreated, TypeLocation, l.ID)
	return true
}

func (a *Account) changeCompanyPhone(now int64) bool {
	id, ok := a.companyIDs.pick(a.rng)
	if !ok {
		return false
	}
	c := a.companies[id]
	old := c.PhoneNumber
	c.PhoneNumber, c.Updated = phoneNumber(a.rng), now
	a.emit(now, a.officeUser(), ActionUpdated, TypeCompany, id, FieldChange{"phoneNumber", old, c.PhoneNumber})
	return true
}

func (a *Account) createLocation(now int64) bool {
	cid, ok := a.companyIDs.pick(a.rng)
	if !ok {
		return false
	}
	l := a.addLocation(now, cid)
	a.emit(now, a.officeUser(), ActionCreated, TypeLocation, l.ID)
	return true
}

func (a *Account) changeLocationPhone(now int64) bool {
	id, ok := a.locationIDs.pick(a.rng)
	if !ok {
		return false
	}
	l := a.locations[id]
	old := l.PhoneNumber
	l.PhoneNumber, l.Updated = phoneNumber(a.rng), now
	a.emit(now, a.officeUser(), ActionUpdated, TypeLocation, id, FieldChange{"phoneNumber", old, l.PhoneNumber})
	return true
}

func (a *Account) createAsset(now int64) bool {
	lid, ok := a.locationIDs.pick(a.rng)
	if !ok {
		return false
	}
	as := a.addAsset(now, lid)
	a.emit(now, a.officeUser(), ActionCreated, TypeAsset, as.ID)
	return true
}

// toggleAsset takes an asset out of service or puts it back.
func (a *Account) toggleAsset(now int64) bool {
	id, ok := a.assetIDs.pick(a.rng)
	if !ok {
		return false
	}
	as := a.assets[id]
	old := as.Status
	if old == StatusActive {
		as.Status = StatusInactive
		a.inactiveAssetIDs.add(id)
	} else {
		as.Status = StatusActive
		a.inactiveAssetIDs.remove(id)
	}
	as.Updated = now
	a.emit(now, a.officeUser(), ActionUpdated, TypeAsset, id, FieldChange{"status", old, as.Status})
	return true
}

func (a *Account) deleteInactiveAsset(now int64) bool {
	id, ok := a.inactiveAssetIDs.pick(a.rng)
	if !ok {
		return false
	}
	a.assetsAt[a.assets[id].LocationID].remove(id)
	a.inactiveAssetIDs.remove(id)
	a.assetIDs.remove(id)
	delete(a.assets, id)
	a.emit(now, a.officeUser(), ActionDeleted, TypeAsset, id)
	return true
}

// The job life-cycle: new (or bidding) → scheduled → completed → [pending_invoice →
// sending_invoice →] closed, with cancellations, no-shows and reschedules on the way.

func (a *Account) setJobStatus(now, user int64, j *Job, to string) {
	from := j.Status
	setIn(a.jobsIn, from).remove(j.ID)
	if to != JobClosed {
		setIn(a.jobsIn, to).add(j.ID)
	}
	j.Status, j.Updated = to, now
	a.emit(now, user, ActionUpdated, TypeJob, j.ID, FieldChange{"status", from, to})
}

func (a *Account) setAppointmentStatus(now, user int64, ap *Appointment, to string) {
	from := ap.Status
	ap.Status, ap.Updated = to, now
	a.emit(now, user, ActionUpdated, TypeAppointment, ap.ID, FieldChange{"status", from, to})
}

func (a *Account) createJob(now int64) bool {
	lid, ok := a.locationIDs.pick(a.rng)
	if !ok {
		return false
	}
	loc := a.locations[lid]
	jt := weighted(a.rng, jobKinds, func(k jobKind) int { return k.weight })
	due := now + int64(3+a.rng.IntN(28))*86400
	if jt.typ == "emergency_service_call" {
		due = now + 4*3600
	}
	status := JobNew
	if jt.typ == "installation" && a.chance(0.5) {
		status = JobBidding
	}
	a.jobNum++
	j := &Job{
		ID:          a.newID(),
		Number:      strconv.Itoa(a.jobNum),
		Type:        jt.typ,
		Status:      status,
		Description: jt.what + " at " + loc.Name,
		LocationID:  lid,
		CustomerID:  loc.CompanyID,
		DueBy:       due,
		Created:     now,
		Updated:     now,
	}
	a.jobs[j.ID] = j
	setIn(a.jobsIn, status).add(j.ID)
	a.emit(now, a.officeUser(), ActionCreated, TypeJob, j.ID)
	return true
}

func (a *Account) decideBid(now int64) bool {
	id, ok := setIn(a.jobsIn, JobBidding).pick(a.rng)
	if !ok {
		return false
	}
	to := JobNew
	if a.chance(0.3) {
		to = JobCanceled
	}
	a.setJobStatus(now, a.officeUser(), a.jobs[id], to)
	return true
}

// visitWindow returns a visit window on a coming working day, or within the next two
// hours for an emergency.
func (a *Account) visitWindow(now int64, jobType string) (start, end int64) {
	if jobType == "emergency_service_call" {
		start = now + int64(15+a.rng.IntN(105))*60
		return start, start + 2*3600
	}
	day := now - now%86400 + int64(1+a.rng.IntN(7))*86400
	start = day + int64(7+a.rng.IntN(9))*3600 // 07:00–15:00 UTC
	return start, start + int64(2+a.rng.IntN(3))*3600
}

func (a *Account) scheduleJob(now int64) bool {
	id, ok := setIn(a.jobsIn, JobNew).pick(a.rng)
	if !ok {
		return false
	}
	j := a.jobs[id]
	start, end := a.visitWindow(now, j.Type)
	crew := 1
	if len(a.techs) > 1 && a.chance(0.25) {
		crew = 2
	}
	techs := make([]int64, 0, crew)
	for _, i := range a.rng.Perm(len(a.techs))[:crew] {
		techs = append(techs, a.techs[i])
	}
	ap := &Appointment{
		ID:          a.newID(),
		JobID:       id,
		Status:      AppointmentScheduled,
		WindowStart: start,
		WindowEnd:   end,
		TechIDs:     techs,
		Created:     now,
		Updated:     now,
	}
	a.appointments[ap.ID] = ap
	a.apptsOf[id] = append(a.apptsOf[id], ap.ID)
	a.visits[ap.ID] = &visit{tech: techs[0]}
	a.waiting.add(ap.ID)
	a.visitFor[id] = ap.ID

	user := a.officeUser()
	a.emit(now, user, ActionCreated, TypeAppointment, ap.ID)
	a.setJobStatus(now, user, j, JobScheduled)
	return true
}

func (a *Account) rescheduleAppointment(now int64) bool {
	id, ok := a.waiting.pick(a.rng)
	if !ok {
		return false
	}
	ap := a.appointments[id]
	shift := int64(1+a.rng.IntN(3)) * 86400
	oldStart, oldEnd := ap.WindowStart, ap.WindowEnd
	ap.WindowStart, ap.WindowEnd, ap.Updated = oldStart+shift, oldEnd+shift, now
	a.emit(now, a.officeUser(), ActionUpdated, TypeAppointment, id,
		FieldChange{"windowStart", oldStart, ap.WindowStart},
		FieldChange{"windowEnd", oldEnd, ap.WindowEnd})
	return true
}

// endVisit forgets the field work of an appointment that is over, one way or another.
func (a *Account) endVisit(apptID int64) {
	a.waiting.remove(apptID)
	a.enroute.remove(apptID)
	a.onsite.remove(apptID)
	delete(a.visits, apptID)
	delete(a.visitFor, a.appointments[apptID].JobID)
}

// noShow: the customer was not there; the job goes back to new, to be scheduled again.
func (a *Account) noShow(now int64) bool {
	id, ok := a.waiting.pick(a.rng)
	if !ok {
		return false
	}
	ap := a.appointments[id]
	user := a.officeUser()
	a.endVisit(id)
	a.setAppointmentStatus(now, user, ap, AppointmentNoShow)
	a.setJobStatus(now, user, a.jobs[ap.JobID], JobNew)
	return true
}

// cancelJob cancels a new job, or a scheduled one whose visit has not started.
func (a *Account) cancelJob(now int64) bool {
	status := JobNew
	if a.chance(0.5) {
		status = JobScheduled
	}
	id, ok := setIn(a.jobsIn, status).pick(a.rng)
	if !ok {
		return false
	}
	user := a.officeUser()
	if apptID, ok := a.visitFor[id]; ok {
		if a.visits[apptID].clock != 0 {
			return false // the technician is already on the way
		}
		to := AppointmentCanceledByCustomer
		if a.chance(0.3) {
			to = AppointmentCanceledByVendor
		}
		a.endVisit(apptID)
		a.setAppointmentStatus(now, user, a.appointments[apptID], to)
	}
	a.setJobStatus(now, user, a.jobs[id], JobCanceled)
	return true
}

// deleteCanceledJob deletes a canceled job and its appointments, as the office cleans up.
func (a *Account) deleteCanceledJob(now int64) bool {
	id, ok := setIn(a.jobsIn, JobCanceled).pick(a.rng)
	if !ok {
		return false
	}
	user := a.officeUser()
	for _, apptID := range a.apptsOf[id] {
		delete(a.appointments, apptID)
		a.emit(now, user, ActionDeleted, TypeAppointment, apptID)
	}
	delete(a.apptsOf, id)
	setIn(a.jobsIn, JobCanceled).remove(id)
	delete(a.jobs, id)
	a.emit(now, user, ActionDeleted, TypeJob, id)
	return true
}

func (a *Account) clockIn(now int64, v *visit, apptID int64, activity string) {
	source := "mobile"
	if a.chance(0.1) {
		source = "ivr"
	}
	c := &ClockEvent{
		ID:            a.newID(),
		UserID:        v.tech,
		JobID:         a.appointments[apptID].JobID,
		AppointmentID: apptID,
		Activity:      activity,
		Source:        source,
		ClockIn:       now,
		Created:       now,
		Updated:       now,
	}
	a.clocks[c.ID] = c
	a.clockedIn[v.tech] = true
	v.clock = c.ID
	a.emit(now, v.tech, ActionCreated, TypeClock, c.ID)
}

func (a *Account) clockOut(now int64, v *visit) {
	c := a.clocks[v.clock]
	c.ClockOut, c.ElapsedTime, c.Updated = now, now-c.ClockIn, now
	v.clock = 0
	delete(a.clockedIn, c.UserID)
	a.emit(now, c.UserID, ActionUpdated, TypeClock, c.ID,
		FieldChange{"clockOut", nil, c.ClockOut},
		FieldChange{"elapsedTime", int64(0), c.ElapsedTime})
}

// startTravel: a technician who is on no other clock sets off to a waiting appointment.
func (a *Account) startTravel(now int64) bool {
	id, ok := a.waiting.pick(a.rng)
	if !ok || a.clockedIn[a.visits[id].tech] {
		return false
	}
	a.waiting.remove(id)
	a.enroute.add(id)
	a.clockIn(now, a.visits[id], id, ActivityEnroute)
	return true
}

func (a *Account) arriveOnSite(now int64) bool {
	id, ok := a.enroute.pick(a.rng)
	if !ok {
		return false
	}
	v := a.visits[id]
	a.enroute.remove(id)
	a.onsite.add(id)
	a.clockOut(now, v)
	a.clockIn(now, v, id, ActivityOnsite)
	return true
}

// finishVisit: the technician clocks out, completes the appointment and the job, and an
// inspection often turns up a deficiency on one of the location's assets.
func (a *Account) finishVisit(now int64) bool {
	id, ok := a.onsite.pick(a.rng)
	if !ok {
		return false
	}
	v, ap := a.visits[id], a.appointments[id]
	j := a.jobs[ap.JobID]
	tech := v.tech
	a.clockOut(now, v)
	a.endVisit(id)
	a.setAppointmentStatus(now, tech, ap, AppointmentCompleted)
	p := 0.15
	if j.Type == "inspection" {
		p = 0.5
		a.inspectAssets(now, tech, j.LocationID)
	}
	if a.chance(p) {
		a.findDeficiency(now, tech, j)
	}
	a.setJobStatus(now, tech, j, JobCompleted)
	return true
}

// inspectAssets: an inspection tags every asset at the location as inspected — the burst of
// asset updates a fire-protection contractor's inspection visit really produces.
func (a *Account) inspectAssets(now, tech, locationID int64) {
	for _, id := range slices.Clone(a.assetsAt[locationID].ids) {
		as := a.assets[id]
		if as == nil {
			continue
		}
		old := as.LastInspected
		as.LastInspected, as.Updated = now, now
		a.emit(now, tech, ActionUpdated, TypeAsset, id, FieldChange{"lastInspected", old, now})
	}
}

func (a *Account) findDeficiency(now, tech int64, j *Job) {
	assetID, ok := a.assetsAt[j.LocationID].pick(a.rng)
	if !ok {
		return
	}
	d := &Deficiency{
		ID:          a.newID(),
		JobID:       j.ID,
		AssetID:     assetID,
		LocationID:  j.LocationID,
		Severity:    pickString(a.rng, severities),
		Status:      DeficiencyNew,
		Description: pickString(a.rng, deficiencyTexts),
		Created:     now,
		Updated:     now,
	}
	a.deficiencies[d.ID] = d
	setIn(a.defsIn, DeficiencyNew).add(d.ID)
	a.emit(now, tech, ActionCreated, TypeDeficiency, d.ID)
}

func (a *Account) invoiceOrClose(now int64) bool {
	id, ok := setIn(a.jobsIn, JobCompleted).pick(a.rng)
	if !ok {
		return false
	}
	to := JobClosed
	if a.chance(0.4) {
		to = JobPendingInvoice
	}
	a.setJobStatus(now, a.officeUser(), a.jobs[id], to)
	return true
}

func (a *Account) sendInvoice(now int64) bool {
	id, ok := setIn(a.jobsIn, JobPendingInvoice).pick(a.rng)
	if !ok {
		return false
	}
	a.setJobStatus(now, a.officeUser(), a.jobs[id], JobSendingInvoice)
	return true
}

func (a *Account) closeInvoiced(now int64) bool {
	id, ok := setIn(a.jobsIn, JobSendingInvoice).pick(a.rng)
	if !ok {
		return false
	}
	a.setJobStatus(now, a.officeUser(), a.jobs[id], JobClosed)
	return true
}

// Deficiencies: new → verified → fixed, or new → invalid → deleted.

func (a *Account) setDeficiencyStatus(now, user int64, d *Deficiency, to string) {
	from := d.Status
	setIn(a.defsIn, from).remove(d.ID)
	if to != DeficiencyFixed {
		setIn(a.defsIn, to).add(d.ID)
	}
	d.Status, d.Updated = to, now
	a.emit(now, user, ActionUpdated, TypeDeficiency, d.ID, FieldChange{"status", from, to})
}

func (a *Account) reviewDeficiency(now int64) bool {
	id, ok := setIn(a.defsIn, DeficiencyNew).pick(a.rng)
	if !ok {
		return false
	}
	to := DeficiencyVerified
	if a.chance(0.25) {
		to = DeficiencyInvalid
	}
	a.setDeficiencyStatus(now, a.officeUser(), a.deficiencies[id], to)
	return true
}

func (a *Account) fixDeficiency(now int64) bool {
	id, ok := setIn(a.defsIn, DeficiencyVerified).pick(a.rng)
	if !ok {
		return false
	}
	tech := a.techs[a.rng.IntN(len(a.techs))]
	a.setDeficiencyStatus(now, tech, a.deficiencies[id], DeficiencyFixed)
	return true
}

func (a *Account) deleteInvalidDeficiency(now int64) bool {
	id, ok := setIn(a.defsIn, DeficiencyInvalid).pick(a.rng)
	if !ok {
		return false
	}
	setIn(a.defsIn, DeficiencyInvalid).remove(id)
	delete(a.deficiencies, id)
	a.emit(now, a.officeUser(), ActionDeleted, TypeDeficiency, id)
	return true
}
