// Package jsonapi holds what the simulated downstream systems share to speak JSON over
// HTTP: path ids, bounded request bodies, JSON answers and errors.
package jsonapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// PathID reads the positive int64 path value name, or answers 400.
func PathID(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		WriteError(w, http.StatusBadRequest, fmt.Sprintf("%s %q: not a positive integer", name, r.PathValue(name)))
		return 0, false
	}
	return id, true
}

// Decode reads the JSON body (at most maxBody bytes) into v, or answers 400 (413 when too
// large).
func Decode(w http.ResponseWriter, r *http.Request, maxBody int64, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(v); err != nil {
		status := http.StatusBadRequest
		if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		WriteError(w, status, "malformed body: "+err.Error())
		return false
	}
	return true
}

// WriteJSON answers v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers {"error": msg} with status.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}
