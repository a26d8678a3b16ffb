package journey

import "fmt"

// Code is a client-visible error code (PROTOCOL section 7).
type Code string

// The codes of PROTOCOL section 7.
const (
	CodeBadRequest   Code = "bad_request"
	CodeUnauthorized Code = "unauthorized"
	CodeForbidden    Code = "forbidden"
	CodeNotFound     Code = "not_found"
	CodeConflict     Code = "conflict"
	CodeTooLarge     Code = "too_large"
	CodeRateLimited  Code = "rate_limited"
	CodeUnavailable  Code = "unavailable"
	CodeInternal     Code = "internal"
)

// Rejection is a typed refusal of an input: a code and a message for the
// client. It is an error; wrap it with %w and recover it with errors.As.
type Rejection struct {
	Code    Code
	Message string
}

func (r *Rejection) Error() string { return string(r.Code) + ": " + r.Message }

func reject(code Code, format string, args ...any) *Rejection {
	return &Rejection{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Rejectf builds a Rejection; for callers outside journey that map their own
// input errors (a body that is not JSON, an unknown frame type).
func Rejectf(code Code, format string, args ...any) *Rejection {
	return reject(code, format, args...)
}
