# Builds the funnel binary into a small image. The same image runs
# `funnel migrate`, `funnel serve` and `funnel work`.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/funnel ./cmd/funnel

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/funnel /usr/local/bin/funnel
USER nonroot
ENTRYPOINT ["/usr/local/bin/funnel"]
