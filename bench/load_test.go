package main

import (
	"encoding/json"
	"testing"
)

// TestSizedSignUpPayload: row 1's payloads are the size asked for, and valid sign-ups.
func TestSizedSignUpPayload(t *testing.T) {
	for _, size := range []int{1200, 1600, 2000, 4000} {
		b := sizedSignUpPayload("r", 7, 1716883200000, size)
		if got := len(b); got != size {
			t.Errorf("len(sizedSignUpPayload(%d)) = %d; want %d", size, got, size)
		}
		var env struct {
			Type string
			Data struct{ ID string }
		}
		if err := json.Unmarshal(b, &env); err != nil || env.Type != "user.created" || env.Data.ID != "user_r000007" {
			t.Errorf("sizedSignUpPayload(%d) = type %q, id %q, error %v; want a user.created of user_r000007", size, env.Type, env.Data.ID, err)
		}
	}
}
