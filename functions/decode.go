package functions

import (
	"encoding/json"
	"fmt"

	"github.com/inngest/inngestgo"
)

// Data is an event's data as the sync functions receive it: the raw JSON, which each function
// decodes itself (eventData). Were the data typed (clerk.User), the SDK (inngestgo v0.15.1)
// would decode it before calling the function and, when that failed ("id": 42,
// email_addresses an object), answer Inngest with an error that Inngest retries until the
// run's attempts run out, without the function ever seeing the event. Data is a struct because
// the SDK accepts only a map or a struct as event data.
type Data struct {
	// JSON is the data as Inngest sent it.
	JSON json.RawMessage
}

// UnmarshalJSON keeps a copy of b, whatever JSON value it is; it never fails.
func (d *Data) UnmarshalJSON(b []byte) error {
	d.JSON = append(d.JSON[:0], b...)
	return nil
}

// MarshalJSON returns the JSON data holds, or null when it holds none.
func (d Data) MarshalJSON() ([]byte, error) {
	if len(d.JSON) == 0 {
		return []byte("null"), nil
	}
	return d.JSON, nil
}

// Event is an Inngest event as the sync functions receive it, its data raw.
type Event = inngestgo.GenericEvent[Data]

// Input is the input of a run of a sync function: its event, and the events of a batch.
type Input = inngestgo.Input[Data]

// eventData decodes the data of evt into a T. It returns an error wrapping bad
// (clerk.ErrBadUser, clerk.ErrBadOrganization, clerk.ErrBadMembership) and the decoder's error,
// naming the event, when the data does not read as a T; T then holds what did read (the id,
// often), for the logs. No retry changes an event's data: the callers do not retry that error.
func eventData[T any](evt Event, bad error) (T, error) {
	var v T
	if err := json.Unmarshal(evt.Data.JSON, &v); err != nil {
		return v, fmt.Errorf("%w: the data of event %s cannot be read: %w", bad, eventIDOf(evt), err)
	}
	return v, nil
}

// eventIDOf returns evt's id, or "" when it has none.
func eventIDOf(evt Event) string {
	if evt.ID == nil {
		return ""
	}
	return *evt.ID
}
