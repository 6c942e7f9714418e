# A static binary in a small non-root image.
#   docker build -t clerk-user-sync .
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/clerk-user-sync . \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/clerk-user-sync /clerk-user-sync
# Only used by the embedded database (MONGODB_URI=embedded): a volume, so that its data
# outlives the container. Production sets MONGODB_URI to MongoDB instead.
COPY --from=build --chown=65532:65532 /out/data /data
ENV PORT=3000 DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 3000
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=5s --retries=6 CMD ["/clerk-user-sync", "healthcheck"]
ENTRYPOINT ["/clerk-user-sync"]
