package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/step"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// serveNoop is the row-2 baseline: an Inngest app with one function and one step that
// upserts {_id} and nothing else, on the same dev server and database as the service.
// Settings: PORT, INNGEST_DEV, MONGODB_URI (with the database in its path).
func serveNoop() error {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URI")))
	if err != nil {
		return err
	}
	// Make the collection now, so that the bench can index it before the load (as the
	// service's store does at start).
	if err := client.Database("noop").CreateCollection(ctx, "users"); err != nil && !strings.Contains(err.Error(), "already exists") {
		return err
	}
	coll := client.Database("noop").Collection("users")
	dev := os.Getenv("INNGEST_DEV")
	ic, err := inngestgo.NewClient(inngestgo.ClientOpts{
		AppID: "bench-noop", Dev: inngestgo.BoolPtr(true), APIBaseURL: &dev, EventAPIBaseURL: &dev,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	type data struct {
		ID string `json:"id"`
	}
	_, err = inngestgo.CreateFunction(ic, inngestgo.FunctionOpts{ID: "noop"}, inngestgo.EventTrigger("bench/noop", nil),
		func(ctx context.Context, in inngestgo.Input[data]) (any, error) {
			return step.Run(ctx, "upsert", func(ctx context.Context) (bool, error) {
				_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: in.Event.Data.ID}},
					bson.D{{Key: "$set", Value: bson.D{{Key: "seen", Value: true}}}}, options.UpdateOne().SetUpsert(true))
				return err == nil, err
			})
		})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/inngest", ic.Serve())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	_ = ctx
	return http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), mux)
}
