package store

import (
	"bytes"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// What an applied write changed, for the events the functions emit after it (package
// syncevent): every upsert that writes a user, an organization or a membership records, in the
// document itself, whether it inserted or updated it and which stored fields it changed
// (fieldSyncChange). A retry of the same version (the write succeeded, the event's send
// failed, Inngest retried the step) finds the version stored and reads the record back, so it
// can emit the same event again.

// fieldSyncChange is the subdocument in which an applied upsert records what it did:
// {kind: "inserted" | "updated", fields: [the names of the stored fields it changed]}.
// docs/users-collection.md documents it.
const (
	fieldSyncChange = "_sync_change"
	syncChangeKind  = "kind"
	syncChangeField = "fields"
)

// AlreadyStored is the outcome of an upsert (UpsertUserChange, UpsertOrganizationChange,
// UpsertMembershipChange) whose version (the same updated_at) is the one stored: a replay or
// the retry of a write that succeeded. It is neither stale (the stored version is newer:
// Skipped) nor refused (the document is a tombstone: Skipped). UpsertUser,
// UpsertOrganization and UpsertMembership report it as Skipped.
const AlreadyStored Outcome = "already_stored"

// Change is what an upsert or a delete did, as an event about it tells.
type Change struct {
	// Outcome is the write's: Inserted, Updated, AlreadyStored or Skipped for an upsert;
	// Deleted or AlreadyDeleted for a delete.
	Outcome Outcome
	// Created is true when the stored version was written by an insert (Inserted, or
	// AlreadyStored over a version that was inserted): the event says created, not updated.
	Created bool
	// Fields are the names of the stored fields the write of the stored version changed, in
	// document order (updated_at and the store's own fields left out): every field it set, for
	// an insert. For AlreadyStored, those the stored version's write recorded (none for a
	// document written before the record existed). None for a delete or Skipped.
	Fields []string
	// At is the version's updated_at for an upsert (Unix milliseconds), and the tombstone's
	// deleted_at for a delete (the first deletion's, for AlreadyDeleted).
	At int64
}

// legacy returns the outcome the upserts without Change report: AlreadyStored is Skipped.
func (c Change) legacy() Outcome {
	if c.Outcome == AlreadyStored {
		return Skipped
	}
	return c.Outcome
}

// recordChange returns set with the record of the write (fieldSyncChange) appended, and the
// Change that write makes once applied (its Outcome left for the caller): an insert when found
// is false, an update of cur otherwise. The fields changed are those of set whose value differs
// from cur's or that cur lacks, and those of unset that cur has; updated_at and
// internal fields (notChanges) are left out.
func recordChange(set, unset bson.D, cur bson.Raw, found bool, at int64) (bson.D, Change) {
	if !found {
		cur = nil
	}
	fields := []string{}
	for _, e := range set {
		if notChanges[e.Key] {
			continue
		}
		old, err := cur.LookupErr(e.Key)
		if err != nil {
			fields = append(fields, e.Key)
			continue
		}
		t, b, err := bson.MarshalValue(e.Value)
		if err != nil || t != old.Type || !bytes.Equal(b, old.Value) {
			fields = append(fields, e.Key)
		}
	}
	for _, e := range unset {
		if _, err := cur.LookupErr(e.Key); err == nil && !notChanges[e.Key] {
			fields = append(fields, e.Key)
		}
	}
	kind := Updated
	if !found {
		kind = Inserted
	}
	record := bson.D{{Key: syncChangeKind, Value: string(kind)}, {Key: syncChangeField, Value: fields}}
	set = append(set[:len(set):len(set)], bson.E{Key: fieldSyncChange, Value: record})
	return set, Change{Created: !found, Fields: fields, At: at}
}

// notChanges are the stored fields a change never lists: the version itself and the store's
// own bookkeeping.
var notChanges = map[string]bool{fieldUpdatedAt: true, fieldSyncChange: true, fieldLiveKey: true}

// alreadyStored returns the Change of the version at stored in cur: AlreadyStored, with the
// record its write left (a document without one reads as an update of no field).
func alreadyStored(cur bson.Raw, at int64) Change {
	c := Change{Outcome: AlreadyStored, At: at, Fields: []string{}}
	rec, ok := cur.Lookup(fieldSyncChange).DocumentOK()
	if !ok {
		return c
	}
	kind, _ := rec.Lookup(syncChangeKind).StringValueOK()
	c.Created = kind == string(Inserted)
	if arr, ok := rec.Lookup(syncChangeField).ArrayOK(); ok {
		vals, _ := arr.Values()
		for _, v := range vals {
			if f, ok := v.StringValueOK(); ok {
				c.Fields = append(c.Fields, f)
			}
		}
	}
	return c
}
