# Throughline. `make setup` once on a fresh machine, then `make run` or `make test`.
GO       ?= go
BIN      := bin/throughline
PKGS     := ./...
FUZZTIME ?= 5s
CHANNELS_FUZZTIME ?= 2s

.PHONY: setup build run test fuzz integ bench vet clean

setup:            ## fetch Go modules (Go itself comes with the machine)
	$(GO) mod download

build:
	$(GO) build -o $(BIN) ./cmd/throughline

run: build        ## a single node with the built-in demo config on 127.0.0.1:8080, data in ./data
	./$(BIN) serve

vet:
	$(GO) vet $(PKGS)

test: vet         ## vet, race tests, and a brief run of every fuzz target
	$(GO) test -race -timeout 9m $(PKGS)
	$(MAKE) fuzz

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzKeys$$' -fuzztime $(FUZZTIME) ./persistence/
	$(GO) test -run '^$$' -fuzz '^FuzzEventCodec$$' -fuzztime $(FUZZTIME) ./persistence/
	$(GO) test -run '^$$' -fuzz '^FuzzFrameDecode$$' -fuzztime $(FUZZTIME) ./gateway/
	$(GO) test -run '^$$' -fuzz '^FuzzSnapshotDecode$$' -fuzztime $(FUZZTIME) ./journey/
	for f in FuzzTwilioSMS FuzzTwilioSignature FuzzWhatsAppWebhook FuzzWhatsAppSignature FuzzParseEmail FuzzVisitorToken FuzzWebchatFrame; do \
	  $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(CHANNELS_FUZZTIME) ./channels/ || exit 1; done

integ: build      ## long runs: soak, kill -9 loops
	THROUGHLINE_INTEG=1 $(GO) test -race -timeout 60m -count=1 $(PKGS)

bench: build      ## durable ingest through the WebSocket gateway, 60 s
	./$(BIN) bench ingest

clean:
	rm -rf bin
