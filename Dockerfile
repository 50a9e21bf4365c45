# The controller image: `make docker-build IMG=registry/name:tag`.
#
# Stage 1 builds a static binary (no cgo, no libc: it runs on a base without
# one); test/image builds it with this file's own `go build` line and checks
# it is static and starts.
FROM golang:1.26 AS builder
ARG TARGETOS=linux
ARG TARGETARCH=amd64
WORKDIR /workspace
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w" -o manager ./cmd

# Stage 2: distroless static (CA certificates, tzdata, no shell), as the
# non-root user 65532.
FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager .
USER 65532:65532
ENTRYPOINT ["/manager"]
