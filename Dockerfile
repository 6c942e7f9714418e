# A static binary in a small non-root image.
#   docker build -t clerk-user-sync .
# The builder is pinned by digest (docker-library/repo-info's record of the tag). The runtime
# image is distroless's moving `nonroot` tag of static-debian12, which Google rebuilds with
# Debian's fixes; no record of its digests could be checked here.
FROM golang:1.26.8-bookworm@sha256:f4191582e1522dfc5980a6bdc0309a756f9697f3e7d0f199c7e26fc82ab324fd AS build
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
