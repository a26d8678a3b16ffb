# Throughline. `make setup` once on a fresh machine, then `make run` or `make test`.
GO       ?= go
BIN      := bin/throughline
PKGS     := ./...
FUZZTIME ?= 5s
CHANNELS_FUZZTIME ?= 2s

.PHONY: setup build run cluster test fuzz integ bench vet clean proto

setup:            ## fetch Go modules, and Debian's chromium for the browser tests when missing
	$(GO) mod download
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -q && apt-get install -y -q chromium) || echo "setup: install Debian's chromium for the browser tests (apt-get install chromium)"; }

cluster: build    ## three local nodes on loopback with the demo config (data in ./data-cluster)
	./scripts/cluster.sh

# Regenerate the node-to-node protobuf messages (needs protoc and
# protoc-gen-go; the generated file is committed).
proto:
	cd actors/remotepb && protoc --go_out=. --go_opt=paths=source_relative throughline_remote.proto

build:
	$(GO) build -o $(BIN) ./cmd/throughline

run: build        ## a single node with the built-in demo config on 127.0.0.1:8080, data in ./data
	./$(BIN) serve

vet:
	$(GO) vet $(PKGS)

test: vet         ## vet, race tests, and a brief run of every fuzz target
	$(GO) test -race -count=1 -timeout 9m $(PKGS)  # -count=1: e2e builds the binary itself, so the test cache would miss server changes
	$(GO) test -count=1 -run 'TestThreeNodeCluster|TestClusterBroadcast|TestClusterOverMutualTLS' ./node/  # in one process: not under -race (node/cluster_test.go says why)
	$(MAKE) fuzz

# Every decoder's fuzz target, as Name:package. `make test` runs each
# briefly (FUZZTIME, CHANNELS_FUZZTIME for the channels' many small ones);
# `make integ` runs each for 60 s.
FUZZ_TARGETS := FuzzKeys:./persistence/ FuzzEventCodec:./persistence/ FuzzRaftCommand:./persistence/ \
	FuzzStoredValues:./persistence/ FuzzFrameDecode:./gateway/ FuzzCloudEvents:./gateway/ \
	FuzzSnapshotDecode:./journey/ FuzzCheckJSONUTF8:./journey/ FuzzDecodeMark:./journey/ FuzzStateDecode:./analytics/ \
	FuzzTokensAndSentiment:./ai/ FuzzDecodeFrame:./bench/
CHANNELS_FUZZ := FuzzTwilioSMS FuzzTwilioSignature FuzzWhatsAppWebhook FuzzWhatsAppSignature FuzzParseEmail FuzzVisitorToken FuzzWebchatFrame

# A brief fuzz run of one target. Go's fuzzer can end a time-bounded run
# with "context deadline exceeded" when a worker is mid-input at the
# deadline; that run is tried up to twice more, and a real
# failure (a crasher, saved under testdata/fuzz) fails every time.
fuzzone = $(GO) test -run '^$$' -fuzz "^$(1)\$$" -fuzztime $(2) $(3) || $(GO) test -run '^$$' -fuzz "^$(1)\$$" -fuzztime $(2) $(3) || $(GO) test -run '^$$' -fuzz "^$(1)\$$" -fuzztime $(2) $(3)

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do name=$${t%%:*}; pkg=$${t#*:}; \
	  echo "fuzz $$name $$pkg"; $(call fuzzone,$$name,$(FUZZTIME),$$pkg) || exit 1; done
	@set -e; for f in $(CHANNELS_FUZZ); do \
	  echo "fuzz $$f ./channels/"; $(call fuzzone,$$f,$(CHANNELS_FUZZTIME),./channels/) || exit 1; done

integ: build      ## long runs: soak, kill -9 loops, every fuzz target for 60 s
	THROUGHLINE_INTEG=1 $(GO) test -race -timeout 60m -count=1 $(PKGS)
	$(MAKE) fuzz FUZZTIME=60s CHANNELS_FUZZTIME=60s

# The NATS JetStream peer is its own binary: the server must not link
# nats-server, and the bench target checks that it does not.
PEER     := bin/throughline-peer

bench: build      ## durable ingest through the WebSocket gateway, 60 s, beside the store ceiling and the NATS JetStream peer
	$(GO) build -o $(PEER) ./bench/cmd/peer
	@! $(GO) version -m $(BIN) | grep nats-io || { echo "bench: $(BIN) links NATS; it must not"; exit 1; }
	./$(BIN) bench ingest

clean:
	rm -rf bin
