// Package ai owns the bot's brains: what the bot answers a customer.
//
// Two brains implement Brain. The builtin one is local and deterministic: a
// multinomial naive Bayes intent classifier trained on the configured example
// phrases, BM25 search over a knowledge base of markdown articles, and a
// lexicon-based sentiment score. The openai one calls any OpenAI-compatible
// /v1/chat/completions server (vLLM, llama.cpp, Ollama, OpenAI) with the
// articles the builtin found (retrieval-augmented generation) and falls back
// to the builtin's answer when the server fails.
//
// It sits below actors/ (the bot actor calls Brain.Reply) and imports the
// standard library and yaml.v3 only; it knows nothing of events or state.
//
// Concurrency: a Brain, a Builtin, an OpenAI and a Knowledge are immutable
// after construction and safe for concurrent use. Everything a reply needs is
// computed when they are built; Reply only reads it.
//
// Everything that grows has a named limit (limits.go); input past a limit is
// refused with an error that names the limit, except query tokens and the
// history sent to a language model, which are truncated to their limits.
package ai
