package store_test

import (
	"math"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"clerksync/store"
)

// The number rule: a stored updated_at of any BSON number type (int32, int64, double,
// Decimal128) is compared with an event's by its numeric value, as MongoDB's filters compare
// it, in both write modes and in every collection.

// eventAt is the updated_at of the events these tests write.
const eventAt = 1_700_000_000_000

// decimal returns the Decimal128 s, failing the test when s is not one.
func decimal(t *testing.T, s string) bson.Decimal128 {
	t.Helper()
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestUpdatedAtEveryNumber: a document whose stored updated_at is a number of any type the
// embedded FerretDB stores is newer than an event exactly when its value is at least the
// event's, in both write modes and in the users, organizations and memberships collections
// alike; and Get reads the value rounded down to whole milliseconds (a value beyond int64's
// range as its largest). The types FerretDB v1 refuses (Decimal128, NaN, ±Infinity) are
// refused on insert, so the test says so instead of claiming to cover them (the reader's test
// below covers them, for MongoDB).
func TestUpdatedAtEveryNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		stored   any
		storable bool  // whether the embedded FerretDB v1 stores it
		asNew    bool  // whether it is as new as or newer than eventAt: the event is skipped
		read     int64 // updated_at as Get reads it
	}{
		{"int32 older", int32(5), true, false, 5},
		{"int64 equal", int64(eventAt), true, true, eventAt},
		{"int64 newer", int64(eventAt + 1), true, true, eventAt + 1},
		{"double equal", float64(eventAt), true, true, eventAt},
		{"double older by a fraction", float64(eventAt) - 0.5, true, false, eventAt - 1},
		{"double newer by a fraction", float64(eventAt) + 0.5, true, true, eventAt},
		{"double 2^62", float64(1 << 62), true, true, 1 << 62},
		{"double 2^63", float64(1 << 63), true, true, math.MaxInt64},
		{"double 1e300", 1e300, true, true, math.MaxInt64},
		{"negative double", -5.5, true, false, -6},
		{"Decimal128", decimal(t, "1700000000001"), false, true, 0},
		{"NaN", math.NaN(), false, false, 0},
		{"+Infinity", math.Inf(1), false, true, 0},
		{"-Infinity", math.Inf(-1), false, false, 0},
	}
	want := func(asNew bool) store.Outcome {
		if asNew {
			return store.Skipped
		}
		return store.Updated
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eachMode(t, func(t *testing.T, s *store.Store) {
				ctx := t.Context()
				err := store.InsertRaw(ctx, s, bson.D{
					{Key: "_id", Value: "user_n"}, {Key: "email", Value: "n@example.org"},
					{Key: "username", Value: "keep"}, {Key: "updated_at", Value: tc.stored},
				})
				if !tc.storable {
					if err == nil {
						t.Fatalf("insert of updated_at %v succeeded; want FerretDB v1 to refuse it (update the test and docs/users-collection.md)", tc.stored)
					}
					return
				}
				if err != nil {
					t.Fatalf("insert of updated_at %v = %v; want it stored", tc.stored, err)
				}
				t.Run("users", func(t *testing.T) {
					if got, err := s.Get(ctx, "user_n"); err != nil || got.UpdatedAt != tc.read {
						t.Errorf("Get(user_n).UpdatedAt = %d, %v; want %d", got.UpdatedAt, err, tc.read)
					}
					mustUpsert(t, s, clerkVersion("user_n", "", "n", eventAt), want(tc.asNew))
					checkHolds(t, s, "user_n", "keep")
				})
				t.Run("organizations", func(t *testing.T) {
					if err := store.InsertRawDoc(ctx, s, store.OrganizationsCollection, bson.D{
						{Key: "_id", Value: "org_n"}, {Key: "name", Value: "Stored"}, {Key: "updated_at", Value: tc.stored},
					}); err != nil {
						t.Fatal(err)
					}
					mustOrg(t, s, store.Organization{ID: "org_n", Name: "Event", UpdatedAt: eventAt}, want(tc.asNew))
				})
				t.Run("memberships", func(t *testing.T) {
					if err := store.InsertRawDoc(ctx, s, store.MembershipsCollection, bson.D{
						{Key: "_id", Value: "orgmem_n"}, {Key: "org_id", Value: "org_n"}, {Key: "user_id", Value: "user_n"},
						{Key: "role", Value: "org:member"}, {Key: "live_key", Value: "org_n/user_n"}, {Key: "updated_at", Value: tc.stored},
					}); err != nil {
						t.Fatal(err)
					}
					mustMember(t, s, store.Membership{ID: "orgmem_n", OrgID: "org_n", UserID: "user_n", Role: "org:admin", UpdatedAt: eventAt}, want(tc.asNew))
				})
			})
		})
	}
}

// TestUpdatedAtReader: the reader both write modes decide with compares a stored updated_at
// with an event's exactly by numeric value, for the values the embedded FerretDB cannot store
// too: a Decimal128 (which MongoDB stores and its filters compare by value), NaN (below every
// number, as MongoDB orders it) and ±Infinity. Anything else that is not a number is older
// than any event.
func TestUpdatedAtReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stored any
		event  int64
		want   int // -1: older than the event, 0: as new, 1: newer
	}{
		{"Decimal128 newer", decimal(t, "1700000000001"), eventAt, 1},
		{"Decimal128 equal", decimal(t, "1.700000000000E+12"), eventAt, 0},
		{"Decimal128 equal with trailing zeros", decimal(t, "1700000000000.000"), eventAt, 0},
		{"Decimal128 newer by a fraction", decimal(t, "1700000000000.0001"), eventAt, 1},
		{"Decimal128 older by a fraction", decimal(t, "1699999999999.9999"), eventAt, -1},
		{"Decimal128 older", decimal(t, "5"), eventAt, -1},
		{"Decimal128 huge", decimal(t, "1E+6000"), eventAt, 1},
		{"Decimal128 tiny", decimal(t, "1E-6000"), 0, 1},
		{"Decimal128 negative", decimal(t, "-1700000000000"), eventAt, -1},
		{"Decimal128 NaN", decimal(t, "NaN"), eventAt, -1},
		{"Decimal128 +Infinity", decimal(t, "Infinity"), eventAt, 1},
		{"Decimal128 -Infinity", decimal(t, "-Infinity"), eventAt, -1},
		{"double NaN", math.NaN(), eventAt, -1},
		{"double +Infinity", math.Inf(1), eventAt, 1},
		{"double -Infinity", math.Inf(-1), eventAt, -1},
		{"double 2^62", float64(1 << 62), eventAt, 1},
		{"double 2^62 against 2^62+1", float64(1 << 62), 1<<62 + 1, -1},
		{"double 2^63", float64(1 << 63), math.MaxInt64, 1},
		{"int64 max", int64(math.MaxInt64), math.MaxInt64, 0},
		{"int32 equal", int32(5), 5, 0},
		{"a string", "1700000000001", eventAt, -1},
		{"a Date", bson.NewDateTimeFromTime(bson.DateTime(eventAt + 1).Time()), eventAt, -1},
		{"missing", nil, eventAt, -1},
	}
	for _, tc := range tests {
		if got := store.CompareUpdatedAt(tc.stored, tc.event); got != tc.want {
			t.Errorf("%s: stored updated_at %v against an event at %d compares %d; want %d", tc.name, tc.stored, tc.event, got, tc.want)
		}
	}
}
