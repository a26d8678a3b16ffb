// Package remotepb holds the protobuf messages Throughline nodes exchange
// over protoactor-go remote. Regenerate with `make proto` (protoc and
// protoc-gen-go); the generated file is committed.
package remotepb
