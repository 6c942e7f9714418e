package main

import (
	"bytes"
	"io"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"
)

// The guard's behaviour through the whole service is tested from the outside in
// e2e/inngestguard_test.go.

func TestReadReservedFollowsArrivingBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		body         int
		wantReserved int64 // at most
	}{
		{"empty", 0, 0},
		{"small", 100, 100},
		{"a few kilobytes", 5000, 8192},
		{"one mebibyte", 1 << 20, 2 << 20},
	}
	for _, tt := range tests {
		sem := semaphore.NewWeighted(inngestBodyBudget)
		got, reserved, err := readReserved(bytes.NewReader(bytes.Repeat([]byte("x"), tt.body)), maxInngestBodyBytes, sem)
		if err != nil || len(got) != tt.body {
			t.Errorf("%s: readReserved = %d bytes, %v; want %d bytes", tt.name, len(got), err, tt.body)
		}
		if reserved > tt.wantReserved || reserved < int64(tt.body) {
			t.Errorf("%s: readReserved reserved %d bytes for %d; want %d to %d", tt.name, reserved, tt.body, tt.body, tt.wantReserved)
		}
	}
	// A reader that has sent nothing yet holds nothing.
	pr, pw := io.Pipe()
	sem := semaphore.NewWeighted(1024)
	done := make(chan int64)
	go func() {
		_, reserved, _ := readReserved(pr, maxInngestBodyBytes, sem)
		done <- reserved
	}()
	time.Sleep(50 * time.Millisecond)
	if !sem.TryAcquire(1024) {
		t.Error("a body that sent nothing holds part of the budget; want none")
	} else {
		sem.Release(1024)
	}
	pw.Close()
	if r := <-done; r != 0 {
		t.Errorf("readReserved of an empty body reserved %d bytes; want 0", r)
	}
}
